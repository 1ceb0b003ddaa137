// StagingDir: the output folder appears only on commit(), with ordinary permissions, and an
// uncommitted one leaves nothing behind.
#include <sys/stat.h>

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
