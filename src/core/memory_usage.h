// This process's memory as Linux counts it: the peak resident set (getrusage) and the current
// resident set split into anonymous pages (heap: what the program holds) and file-backed pages
// (mmapped files such as a checkpoint: clean, so the kernel can drop them under pressure, but
// they count in RSS as tools like top show it).
#pragma once
#include <cstdint>
#include <string>

namespace awq {

struct RssBreakdown {
  double anon_mib = 0;  // /proc/self/status RssAnon
  double file_mib = 0;  // /proc/self/status RssFile (+ RssShmem)
};

// Peak resident set size of this process so far, MiB.
double peak_rss_mib();

// The current RSS split; zeros where /proc/self/status cannot be read (not Linux).
RssBreakdown current_rss();

// Bytes this process can still allocate without swapping, as Linux estimates them: /proc/meminfo
// MemAvailable, or less where a cgroup v2 limit (memory.max - memory.current, a container's) is
// lower. -1 where neither can be read (not Linux).
int64_t available_memory_bytes();

// bytes in GiB with two decimals ("16.00"), for messages.
std::string gib_text(int64_t bytes);

}  // namespace awq
