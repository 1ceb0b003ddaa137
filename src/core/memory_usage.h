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
// MemAvailable, or less where a cgroup's memory limit (a container's, a systemd unit's) leaves
// less room. -1 where neither can be read (not Linux).
int64_t available_memory_bytes();

// The least room any memory limit on this process's cgroups leaves: for the cgroup and each of its
// ancestors, limit - (usage - inactive file cache), cgroup v2 (memory.max, memory.current) or v1
// (the memory controller's memory.limit_in_bytes, memory.usage_in_bytes). proc_self_cgroup: the
// text of /proc/self/cgroup; root: where the cgroup filesystems are mounted (/sys/fs/cgroup).
// -1 where no limit applies.
int64_t cgroup_memory_room(const std::string& proc_self_cgroup, const std::string& root);

// bytes in GiB with two decimals ("16.00"), for messages.
std::string gib_text(int64_t bytes);

}  // namespace awq
