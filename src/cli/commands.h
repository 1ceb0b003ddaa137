// One registration function per subcommand; each lives in its own cmd_*.cpp.
#pragma once
#include <CLI/CLI.hpp>

namespace awq::cli {

void add_generate(CLI::App& app);
void add_perplexity(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_inspect(CLI::App& app);
void add_quantize(CLI::App& app);
void add_bench(CLI::App& app);
void add_random_model(CLI::App& app);
void add_export_gguf(CLI::App& app);
void add_chat(CLI::App& app);
void add_serve(CLI::App& app);

}  // namespace awq::cli
