// The memory a process may still take (core/memory_usage.h): the cgroup limits read from a fake
// /sys/fs/cgroup in a temporary folder, v1 and v2, nested, with and without a cgroup namespace.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "core/memory_usage.h"
#include "support/temp_dir.h"

namespace awq {
namespace {

constexpr int64_t MiB = int64_t(1) << 20;

// One cgroup folder under root: its limit, usage and inactive file cache (v2 or v1 file names).
void make_group(const test::TempDir& root, const std::string& dir, bool v2, const std::string& limit, int64_t usage,
                int64_t inactive_file) {
  std::filesystem::create_directories(root.file(dir));
  root.write(dir + (v2 ? "/memory.max" : "/memory.limit_in_bytes"), limit + "\n");
  root.write(dir + (v2 ? "/memory.current" : "/memory.usage_in_bytes"), std::to_string(usage) + "\n");
  root.write(dir + "/memory.stat", std::string(v2 ? "anon 1\ninactive_file " : "cache 5\ntotal_inactive_file ") +
                                       std::to_string(inactive_file) + "\nactive_file 7\n");
}

TEST(CgroupMemoryRoom, V2TheTightestLimitOnThePath) {
  test::TempDir root;
  // system.slice limited to 8 GiB with 6 used; the service under it to 4 GiB with 1 used, of which
  // 512 MiB is reclaimable page cache.
  make_group(root, "system.slice", true, std::to_string(8192 * MiB), 6144 * MiB, 0);
  make_group(root, "system.slice/awq.service", true, std::to_string(4096 * MiB), 1024 * MiB, 512 * MiB);
  EXPECT_EQ(cgroup_memory_room("0::/system.slice/awq.service\n", root.path()), 2048 * MiB);  // 8 - 6
  make_group(root, "system.slice", true, "max", 6144 * MiB, 0);
  EXPECT_EQ(cgroup_memory_room("0::/system.slice/awq.service\n", root.path()), 3584 * MiB);  // 4 - (1 - 0.5)
}

TEST(CgroupMemoryRoom, V2ContainerWithANamespace) {
  test::TempDir root;
  make_group(root, ".", true, std::to_string(2048 * MiB), 2500 * MiB, 0);  // over its limit: no room
  EXPECT_EQ(cgroup_memory_room("0::/\n", root.path()), 0);
}

TEST(CgroupMemoryRoom, V1MemoryControllerWithoutANamespace) {
  test::TempDir root;
  // A container's own cgroup is mounted at memory/; /proc/self/cgroup names the host's path.
  make_group(root, "memory", false, std::to_string(16384 * MiB), 4096 * MiB, 1024 * MiB);
  const std::string groups = "9:pids:/docker/abc\n4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n0::/\n";
  EXPECT_EQ(cgroup_memory_room(groups, root.path()), 13312 * MiB);  // 16 - (4 - 1)
  // The same path under the mount (no namespace games): its own, tighter, limit counts too.
  make_group(root, "memory/docker/abc", false, std::to_string(1024 * MiB), 256 * MiB, 0);
  EXPECT_EQ(cgroup_memory_room(groups, root.path()), 768 * MiB);
}

TEST(CgroupMemoryRoom, NoLimitsNoRoomFigure) {
  test::TempDir root;
  make_group(root, "memory", false, "9223372036854771712", 900 * MiB, 0);  // v1's "unlimited"
  make_group(root, "memory/process_api/e9f9", false, "9223372036854771712", 600 * MiB, 0);
  EXPECT_EQ(cgroup_memory_room("4:memory:/process_api/e9f9\n0::/\n", root.path()), -1);
  EXPECT_EQ(cgroup_memory_room("0::/user.slice\n", root.path()), -1);  // nothing there
  EXPECT_EQ(cgroup_memory_room("", root.path()), -1);
  EXPECT_EQ(cgroup_memory_room("garbage\n", root.path()), -1);
}

TEST(AvailableMemory, KnownOnLinuxAndNoMoreThanMemAvailable) {
  const int64_t avail = available_memory_bytes();
  std::printf("[ note     ] available memory: %.2f GiB\n", double(avail) / double(int64_t(1) << 30));
  EXPECT_GT(avail, 64 * MiB);  // this process runs, so some is there
}

}  // namespace
}  // namespace awq
