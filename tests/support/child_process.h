// A child process for tests: argv run with stdout/stderr into files (and optionally two
// pipes on fds 3 and 4, as Chromium's --remote-debugging-pipe wants), signalled and reaped
// with a deadline. Killed (SIGKILL) if still running when the object goes away.
// Header-only test helper.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.h"

namespace awq::test {

class ChildProcess {
 public:
  // with_pipes: the child reads fd 3 (write_fd() here) and writes fd 4 (read_fd() here).
  ChildProcess(const std::vector<std::string>& argv, bool with_pipes = false) {
    int to_child[2] = {-1, -1}, from_child[2] = {-1, -1};
    if (with_pipes && (::pipe(to_child) != 0 || ::pipe(from_child) != 0))
      throw std::runtime_error("pipe failed");
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const std::string out = dir_.file("stdout"), err = dir_.file("stderr");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {  // child: only async-signal-safe calls until exec
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int n = ::open("/dev/null", O_RDONLY);
      ::dup2(n, 0);
      ::dup2(o, 1);
      ::dup2(e, 2);
      if (with_pipes) {
        // Move the ends out of the way of 3 and 4 first, then place them.
        const int r = ::fcntl(to_child[0], F_DUPFD, 10), w = ::fcntl(from_child[1], F_DUPFD, 10);
        ::dup2(r, 3);
        ::dup2(w, 4);
      }
      for (int fd = with_pipes ? 5 : 3; fd < 1024; ++fd) ::close(fd);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    if (with_pipes) {
      ::close(to_child[0]);
      ::close(from_child[1]);
      write_fd_ = to_child[1];
      read_fd_ = from_child[0];
    }
  }
  ~ChildProcess() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (write_fd_ >= 0) ::close(write_fd_);
    if (read_fd_ >= 0) ::close(read_fd_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  int write_fd() const { return write_fd_; }
  int read_fd() const { return read_fd_; }
  std::string err() const { return read_file_bytes(dir_.file("stderr")); }
  std::string out() const { return read_file_bytes(dir_.file("stdout")); }
  void signal(int sig) const { ::kill(pid_, sig); }

  // The wait status once the child has exited, waiting up to `timeout`; nullopt if it is
  // still running then.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) status_ = st;
      else if (std::chrono::steady_clock::now() >= until) break;
      else std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status_;
  }

  // Polls stderr until it contains `text` (or the child exits / the time is up).
  bool wait_for_stderr(const std::string& text, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (err().find(text) != std::string::npos) return true;
      if (wait(std::chrono::milliseconds(0))) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int write_fd_ = -1, read_fd_ = -1;
  std::optional<int> status_;
};

}  // namespace awq::test
