// Helpers shared by the subcommands: the MODEL_DIR argument, thread count, reading files.
#pragma once
#include <string>

#include <CLI/CLI.hpp>

namespace awq::cli {

// Adds the positional MODEL_DIR (must exist).
void add_model_dir(CLI::App* cmd, std::string& dir);
// Adds -t/--threads (default: all hardware threads).
void add_threads(CLI::App* cmd, int& threads);
// Whole file as bytes; awq::Error naming the path when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace awq::cli
