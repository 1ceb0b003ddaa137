#include "core/memory_usage.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
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
int64_t read_number(const std::string& path) {
  std::ifstream f(path);
  int64_t v = -1;
  if (!(f >> v)) return -1;
  return v;
}

// The value of `key` in a memory.stat file ("inactive_file 12345" lines); 0 where absent.
int64_t stat_value(const std::string& path, const std::string& key) {
  std::ifstream f(path);
  std::string k;
  int64_t v = 0;
  while (f >> k >> v)
    if (k == key) return v;
  return 0;
}

// The room under the limit of one cgroup folder: limit - (usage - inactive file cache), the
// inactive cache being what the kernel reclaims before it would fail an allocation (as `docker
// stats` counts usage). -1 where the folder has no limit (or is not there).
int64_t folder_room(const std::string& dir, bool v2) {
  const int64_t limit = read_number(dir + (v2 ? "/memory.max" : "/memory.limit_in_bytes"));
  if (limit < 0 || limit >= (int64_t(1) << 60)) return -1;  // "max", or v1's "unlimited" (~2^63)
  const int64_t usage = read_number(dir + (v2 ? "/memory.current" : "/memory.usage_in_bytes"));
  if (usage < 0) return -1;
  const int64_t reclaimable = stat_value(dir + "/memory.stat", v2 ? "inactive_file" : "total_inactive_file");
  return std::max<int64_t>(0, limit - std::max<int64_t>(0, usage - reclaimable));
}

}  // namespace

int64_t cgroup_memory_room(const std::string& proc_self_cgroup, const std::string& root) {
  int64_t room = -1;
  std::istringstream lines(proc_self_cgroup);
  std::string line;
  while (std::getline(lines, line)) {  // "0::/user.slice/x" (v2) or "4:memory:/docker/abc" (v1)
    const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const bool v2 = a == 1 && line[0] == '0' && b == a + 1;  // hierarchy 0, no controllers listed
    bool memory = false;
    std::istringstream controllers(line.substr(a + 1, b - a - 1));
    for (std::string name; std::getline(controllers, name, ',');) memory = memory || name == "memory";
    if (!v2 && !memory) continue;
    // The cgroup and each of its ancestors, up to the mount's root: every limit on the way applies.
    // A container without a cgroup namespace shows the host's path, which is not under its mount:
    // the missing folders are skipped and the mount's root (the container's own cgroup) is read.
    std::string path = line.substr(b + 1);
    const std::string mount = root + (v2 ? "" : "/memory");
    for (;;) {
      const int64_t r = folder_room(mount + (path == "/" ? "" : path), v2);
      if (r >= 0) room = room < 0 ? r : std::min(room, r);
      if (path.empty() || path == "/") break;
      const size_t slash = path.rfind('/');
      path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
    }
  }
  return room;
}

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
  std::ifstream cg("/proc/self/cgroup");
  const std::string groups((std::istreambuf_iterator<char>(cg)), std::istreambuf_iterator<char>());
  const int64_t room = cgroup_memory_room(groups, "/sys/fs/cgroup");
  if (room >= 0) avail = avail < 0 ? room : std::min(avail, room);
  return avail;
}

std::string gib_text(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", double(bytes) / double(int64_t(1) << 30));
  return buf;
}

}  // namespace awq
