// awq: quantize, inspect and run Llama-family models. One subcommand per cmd_*.cpp file.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"awq.cpp: AWQ 4-bit quantization and inference for Llama-family models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "awq 0.1.0");
  awq::cli::add_quantize(app);
  awq::cli::add_generate(app);
  awq::cli::add_perplexity(app);
  awq::cli::add_tokenize(app);
  awq::cli::add_inspect(app);
  awq::cli::add_bench(app);
  awq::cli::add_random_model(app);
  awq::cli::add_export_gguf(app);
  awq::cli::add_chat(app);
  awq::cli::add_serve(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const awq::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: internal: %s\n", e.what());
    return 2;
  }
  return 0;
}
