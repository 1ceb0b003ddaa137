#include "cli/common.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/thread_pool.h"

namespace awq::cli {

void add_model_dir(CLI::App* cmd, std::string& dir) {
  cmd->add_option("MODEL_DIR", dir,
                  "Hugging Face model folder (config.json, *.safetensors, tokenizer.json)")
      ->required()
      ->check(CLI::ExistingPath);
}

void add_threads(CLI::App* cmd, int& threads) {
  threads = ThreadPool::default_threads();
  cmd->add_option("-t,--threads", threads, "CPU threads")->capture_default_str()->check(CLI::Range(1, 1024));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace awq::cli
