#include "core/memory_usage.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace awq {

double peak_rss_mib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

RssBreakdown current_rss() {
  RssBreakdown r;
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {  // lines such as "RssAnon:	  123456 kB"
    std::istringstream in(line);
    std::string key;
    double kib = 0;
    if (!(in >> key >> kib)) continue;
    if (key == "RssAnon:") r.anon_mib = kib / 1024.0;
    else if (key == "RssFile:" || key == "RssShmem:") r.file_mib += kib / 1024.0;
  }
  return r;
}

namespace {

// The first number in `path` (a cgroup file: "max" and missing files give -1).
int64_t read_number(const char* path) {
  std::ifstream f(path);
  int64_t v = -1;
  if (!(f >> v)) return -1;
  return v;
}

}  // namespace

int64_t available_memory_bytes() {
  int64_t avail = -1;
  std::ifstream f("/proc/meminfo");
  std::string line;
  while (std::getline(f, line)) {  // "MemAvailable:   12345678 kB"
    std::istringstream in(line);
    std::string key;
    int64_t kib = 0;
    if (in >> key >> kib && key == "MemAvailable:") {
      avail = kib * 1024;
      break;
    }
  }
  const int64_t max = read_number("/sys/fs/cgroup/memory.max"), used = read_number("/sys/fs/cgroup/memory.current");
  if (max >= 0 && used >= 0) {
    const int64_t room = std::max<int64_t>(0, max - used);
    avail = avail < 0 ? room : std::min(avail, room);
  }
  return avail;
}

std::string gib_text(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", double(bytes) / double(int64_t(1) << 30));
  return buf;
}

}  // namespace awq
