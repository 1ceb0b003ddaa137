#include "core/memory_usage.h"

#include <sys/resource.h>

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

}  // namespace awq
