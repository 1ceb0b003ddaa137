// A progress bar on stderr for long work: "label [=====>    ] 12/224  5.3 s  ETA 1:02  extra".
// On a terminal it redraws one line; elsewhere (CI logs) it prints a line every ~10 %.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace awq {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled = true);
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");

 private:
  std::string label_;
  int64_t total_;
  bool enabled_, tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
};

std::string format_duration(double seconds);  // "1:02", "1:02:03", "5.3 s"

}  // namespace awq
