#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace awq {

std::string format_duration(double s) {
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1f s", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%d:%02d", int(s) / 60, int(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%d:%02d:%02d", int(s) / 3600, int(s) / 60 % 60, int(s) % 60);
  }
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total > 0 ? total : 1), enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

void ProgressBar::update(int64_t done, const std::string& extra) {
  if (!enabled_) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = double(done) / double(total_);
  const double eta = done > 0 ? elapsed * (1.0 - frac) / frac : 0.0;
  if (!tty_) {  // a log: one line per tenth of the work
    const int decile = int(frac * 10);
    if (decile == last_decile_) return;
    last_decile_ = decile;
  }
  constexpr int kWidth = 30;
  std::string bar(kWidth, ' ');
  const int fill = int(frac * kWidth);
  for (int i = 0; i < fill && i < kWidth; ++i) bar[size_t(i)] = '=';
  if (fill < kWidth) bar[size_t(fill)] = '>';
  std::fprintf(stderr, "%s%s [%s] %lld/%lld  %s  ETA %s  %s%s", tty_ ? "\r\033[K" : "",
               label_.c_str(), bar.c_str(), (long long)done, (long long)total_,
               format_duration(elapsed).c_str(), format_duration(eta).c_str(), extra.c_str(),
               tty_ ? "" : "\n");
  std::fflush(stderr);
}

void ProgressBar::finish(const std::string& extra) {
  if (!enabled_) return;
  update(total_, extra);
  if (tty_) std::fputc('\n', stderr);
}

}  // namespace awq
