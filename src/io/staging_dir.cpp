#include "io/staging_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace awq {
namespace fs = std::filesystem;

namespace {
void fsync_path(const std::string& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

StagingDir::StagingDir(const std::string& final_path, bool replace_existing)
    : final_(fs::path(final_path).lexically_normal().string()), replace_(replace_existing) {
  if (!final_.empty() && final_.back() == '/') final_.pop_back();
  if (final_.empty()) throw Error("output folder: empty path");
  if (fs::exists(final_) && !replace_)
    throw Error(final_ + ": already exists; choose another output folder or pass --force to replace it");
  fs::path parent = fs::path(final_).parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (!fs::is_directory(parent)) throw Error(parent.string() + ": cannot create the output's parent folder");
  std::string name = ".";  // built with += : GCC 12 warns (-Wrestrict, a false positive) on "." + s
  name += fs::path(final_).filename().string();
  name += ".tmp-XXXXXX";
  std::string tmpl = (parent / name).string();
  if (!::mkdtemp(tmpl.data())) throw Error(tmpl + ": cannot create a staging folder: " + std::strerror(errno));
  tmp_ = tmpl;
  // mkdtemp makes the folder 0700; give the finished checkpoint the permissions a plain
  // mkdir would (0777 minus the umask), so other users and serving engines can read it.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(tmp_.c_str(), 0777 & ~mask);
}

StagingDir::~StagingDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

void StagingDir::commit() {
  for (const auto& e : fs::directory_iterator(tmp_)) fsync_path(e.path().string());
  fsync_path(tmp_);
  std::error_code ec;
  if (fs::exists(final_)) {
    // Move the old folder aside first so the rename below is a single atomic step.
    const std::string old = tmp_ + ".old";
    fs::rename(final_, old, ec);
    if (ec) throw Error(final_ + ": cannot move the existing folder aside: " + ec.message());
    fs::rename(tmp_, final_, ec);
    if (ec) {
      fs::rename(old, final_);
      throw Error(final_ + ": cannot rename the staging folder into place: " + ec.message());
    }
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp_, final_, ec);
    if (ec) throw Error(final_ + ": cannot rename the staging folder into place: " + ec.message());
  }
  fsync_path(fs::path(final_).parent_path().empty() ? "." : fs::path(final_).parent_path().string());
  committed_ = true;
}

}  // namespace awq
