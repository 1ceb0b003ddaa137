#include "io/staging_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

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

// Inside a staging folder while it is written: "HOST PID" of the process writing it.
constexpr const char* kOwnerFile = ".awq-staging-owner";

std::string host_name() {
  char h[256] = {};
  if (::gethostname(h, sizeof h - 1) != 0) return "?";
  return h;
}

// Removes the staging folders PARENT/PREFIX* that an earlier run on `host` left behind when
// it was killed (a second Ctrl-C exits at once; SIGKILL, the OOM killer): those whose owner
// file names this host and a process that no longer exists. A folder without an owner file, of
// another host, or of a live process is left alone. Best effort: an unreadable folder ends the
// scan instead of failing the run.
void remove_stale_staging(const fs::path& parent, const std::string& prefix, const std::string& host) {
  std::error_code ec;
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path dir = it->path();
    std::error_code type_ec;
    if (dir.filename().string().rfind(prefix, 0) != 0 || !it->is_directory(type_ec)) continue;
    std::string owner_host;
    long pid = 0;
    if (!(std::ifstream(dir / kOwnerFile) >> owner_host >> pid) || owner_host != host || pid <= 0) continue;
    if (::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to probe)
    std::error_code rm_ec;
    fs::remove_all(dir, rm_ec);
    if (!rm_ec) std::fprintf(stderr, "note: removed %s, the staging folder of an interrupted run (pid %ld)\n", dir.c_str(), pid);
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
  const std::string host = host_name();
  remove_stale_staging(parent, name.substr(0, name.size() - 6), host);  // prefix: without the XXXXXX
  std::string tmpl = (parent / name).string();
  if (!::mkdtemp(tmpl.data())) throw Error(tmpl + ": cannot create a staging folder: " + std::strerror(errno));
  tmp_ = tmpl;
  std::ofstream(tmp_ + "/" + kOwnerFile) << host << ' ' << long(::getpid()) << '\n';
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
  std::error_code rm;
  fs::remove(tmp_ + "/" + kOwnerFile, rm);
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
