// StagingDir: the output folder appears only on commit(), with ordinary permissions, and an
// uncommitted one leaves nothing behind.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/staging_dir.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

TEST(StagingDir, CommitRenamesWithUmaskPermissions) {
  awq::test::TempDir tmp;
  const std::string out = tmp.path() + "/model";
  const mode_t old_mask = ::umask(022);
  {
    awq::StagingDir st(out, false);
    std::ofstream(st.file("config.json")) << "{}";
    EXPECT_FALSE(fs::exists(out));
    st.commit();
  }
  ::umask(old_mask);
  ASSERT_TRUE(fs::exists(out + "/config.json"));
  EXPECT_FALSE(fs::exists(out + "/.awq-staging-owner"));  // the owner file stays out of the output
  struct stat sb {};
  ASSERT_EQ(::stat(out.c_str(), &sb), 0);
  // mkdtemp alone would give 0700, unreadable by a serving engine running as another user.
  EXPECT_EQ(sb.st_mode & 0777, 0755u);
}

TEST(StagingDir, UncommittedLeavesNothing) {
  awq::test::TempDir tmp;
  const std::string out = tmp.path() + "/model";
  {
    awq::StagingDir st(out, false);
    std::ofstream(st.file("a.bin")) << "x";
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(fs::is_empty(tmp.path()));
}

TEST(StagingDir, RefusesExistingWithoutReplace) {
  awq::test::TempDir tmp;
  const std::string out = tmp.path() + "/model";
  fs::create_directory(out);
  EXPECT_THROW(awq::StagingDir(out, false), awq::Error);
  awq::StagingDir st(out, true);
  std::ofstream(st.file("new.txt")) << "y";
  st.commit();
  EXPECT_TRUE(fs::exists(out + "/new.txt"));
}

namespace {
std::string this_host() {
  char h[256] = {};
  ::gethostname(h, sizeof h - 1);
  return h;
}

// A staging folder as a run killed outright would leave it: PARENT/.model.tmp-SUFFIX with its
// owner file and a partial file.
std::string make_left_behind(const std::string& parent, const std::string& suffix, const std::string& owner) {
  const std::string dir = parent + "/.model.tmp-" + suffix;
  fs::create_directory(dir);
  if (!owner.empty()) std::ofstream(dir + "/.awq-staging-owner") << owner << "\n";
  std::ofstream(dir + "/model.safetensors") << "partial";
  return dir;
}
}  // namespace

// A second Ctrl-C or SIGKILL leaves the staging folder behind; the next run for the same output
// removes it when its process (on this host) is gone, and leaves every other folder alone.
TEST(StagingDir, RemovesStaleFoldersOfDeadProcesses) {
  awq::test::TempDir tmp;
  const std::string out = tmp.path() + "/model";
  const pid_t child = ::fork();  // a pid that surely belongs to no running process afterwards
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  const std::string dead = make_left_behind(tmp.path(), "dead01", this_host() + " " + std::to_string(child));
  const std::string alive = make_left_behind(tmp.path(), "alive1", this_host() + " " + std::to_string(::getpid()));
  const std::string other_host = make_left_behind(tmp.path(), "other1", "another-host-xyz " + std::to_string(child));
  const std::string no_owner = make_left_behind(tmp.path(), "noown1", "");
  const std::string other_name = tmp.path() + "/.othermodel.tmp-dead02";
  fs::create_directory(other_name);
  std::ofstream(other_name + "/.awq-staging-owner") << this_host() << " " << child << "\n";
  {
    awq::StagingDir st(out, false);
    std::ofstream(st.file("config.json")) << "{}";
    st.commit();
  }
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(alive));
  EXPECT_TRUE(fs::exists(other_host));
  EXPECT_TRUE(fs::exists(no_owner));
  EXPECT_TRUE(fs::exists(other_name)) << "only the staging folders of this output are looked at";
  EXPECT_TRUE(fs::exists(out + "/config.json"));
}
