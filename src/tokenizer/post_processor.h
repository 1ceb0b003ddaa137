// Post-processors of tokenizer.json ("post_processor" field), single-sequence case only:
// the special-token ids put before and after the encoded text when add_special_tokens
// is on (TemplateProcessing "<s> $A", RobertaProcessing "<s> $A </s>", ...).
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "tokenizer/json_node.h"

namespace awq::tok {

struct SpecialAffixes {
  std::vector<int32_t> prefix, suffix;
};

// Reads the affixes of a post-processor. Supported types: TemplateProcessing,
// ByteLevel (adds nothing), RobertaProcessing, BertProcessing, Sequence. Null JSON gives
// nullopt (the caller falls back to tokenizer_config.json's add_bos_token/add_eos_token).
// Anything else is an awq::Error naming the field.
std::optional<SpecialAffixes> read_post_processor(const JsonNode& node);

}  // namespace awq::tok
