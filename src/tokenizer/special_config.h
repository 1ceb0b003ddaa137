// BOS / EOS and add_bos_token / add_eos_token from the files next to tokenizer.json:
// tokenizer_config.json, generation_config.json and config.json (each optional).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace awq::tok {

struct SpecialConfig {
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;  // tokenizer_config's eos_token first, then the configs' ids
  std::optional<bool> add_bos_token, add_eos_token;
};

// dir: the folder of tokenizer.json. token_to_id resolves bos_token / eos_token strings.
// A file that exists but is not valid JSON, or a field of the wrong type, is an awq::Error
// naming the file and field.
SpecialConfig read_special_config(const std::string& dir,
                                  const std::function<std::optional<int32_t>(std::string_view)>& token_to_id);

}  // namespace awq::tok
