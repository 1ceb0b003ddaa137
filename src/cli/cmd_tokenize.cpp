// awq tokenize MODEL_DIR -p TEXT: the ids as a JSON array on stdout.
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "tokenizer/tokenizer.h"

namespace awq::cli {

namespace {

struct TokenizeArgs {
  std::string model_dir, prompt, file;
  bool add_special = false, pieces = false;
};

void run(const TokenizeArgs& a) {
  const Tokenizer tok = Tokenizer::load(a.model_dir);
  const std::string text = a.file.empty() ? a.prompt : read_file(a.file);
  const std::vector<int32_t> ids = tok.encode(text, a.add_special);
  nlohmann::json out = ids;
  if (a.pieces) {
    out = nlohmann::json::array();
    for (int32_t id : ids) out.push_back({{"id", id}, {"token", tok.id_to_token(id)}});
  }
  std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

}  // namespace

void add_tokenize(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Encode text; prints the ids as a JSON array (a folder with only tokenizer files works)");
  add_model_dir(cmd, args->model_dir);
  auto* p = cmd->add_option("-p,--prompt", args->prompt, "Text to encode");
  cmd->add_option("-f,--file", args->file, "Read the text from a file")->excludes(p);
  cmd->add_flag("--add-special", args->add_special, "Add the special tokens the tokenizer's post-processor / tokenizer_config.json ask for (BOS)");
  cmd->add_flag("--pieces", args->pieces, "Print [{\"id\", \"token\"}] objects instead of bare ids");
  cmd->callback([args] { run(*args); });
}

}  // namespace awq::cli
