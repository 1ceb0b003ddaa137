// A folder written in full under a temporary name beside its final path and renamed into
// place by commit(), so an error or Ctrl-C never leaves a half-written checkpoint: the
// destructor removes an uncommitted staging folder. A process killed outright (a second
// Ctrl-C, SIGKILL) cannot; its folder holds an owner file (host, pid), and the next StagingDir
// for the same final path removes the folders whose process on this host is gone.
#pragma once
#include <string>

namespace awq {

class StagingDir {
 public:
  // final_path must not exist unless replace_existing (awq::Error otherwise, checked here,
  // before any work is done). The staging folder is PARENT/.NAME.tmp-XXXXXX; stale ones of
  // killed runs are removed first (a note on stderr for each).
  StagingDir(const std::string& final_path, bool replace_existing);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::string& path() const { return tmp_; }
  std::string file(const std::string& name) const { return tmp_ + "/" + name; }
  // fsyncs the folder and renames it to final_path (an existing one is removed first).
  void commit();

 private:
  std::string final_, tmp_;
  bool replace_, committed_ = false;
};

}  // namespace awq
