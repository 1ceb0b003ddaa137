// Runs the built `awq` binary (AWQ_BINARY) with arguments, capturing exit status, stdout and
// stderr through files. Header-only test helper.
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace awq::test {

struct CliResult {
  int exit_code = -1;     // the process's exit status, or 128 + signal when it was killed
  std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline CliResult run_awq(const std::vector<std::string>& args, const std::string& stdin_text = "") {
  TempDir tmp;
  std::string cmd = shell_quote(AWQ_BINARY);
  for (const auto& a : args) {
    cmd += ' ';
    cmd += shell_quote(a);
  }
  const std::string in = tmp.write("stdin", stdin_text);
  for (const std::string& part : {" <" + shell_quote(in), " >" + shell_quote(tmp.file("out")),
                                  " 2>" + shell_quote(tmp.file("err"))})
    cmd += part;
  const int st = std::system(cmd.c_str());
  CliResult r;
  if (WIFEXITED(st)) {
    r.exit_code = WEXITSTATUS(st);
    // sh reports a child killed by a signal as 128 + signal too
  } else if (WIFSIGNALED(st)) {
    r.exit_code = 128 + WTERMSIG(st);
  }
  r.out = read_file_bytes(tmp.file("out"));
  r.err = read_file_bytes(tmp.file("err"));
  return r;
}

}  // namespace awq::test
