// `awq chat` end to end on the tiny model (a base model without a chat template, so the
// ChatML fallback and its notice are exercised) with piped stdin: replies on stdout equal an
// in-process ChatSession's, /reset, a message longer than the context is refused with a clear
// message and the session continues; Ctrl-C during a reply stops that reply only.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"

#include "runtime/chat_session.h"
#include "support/run_cli.h"
#include "support/shared_data.h"

extern char** environ;

namespace awq {
namespace {

using test::run_awq;
using test::tiny_model_dir;

std::string long_message() {
  std::string s;
  for (int i = 0; i < 150; ++i) s += "word ";
  return s;
}

TEST(ChatCli, TwoTurnsResetTooLongAndGoOn) {
  const std::string too_long = long_message();
  const std::string input = "Hello there\nWhat is your name?\n/reset\n" + too_long + "\nOnce upon a time\n";
  auto r = run_awq({"chat", tiny_model_dir(), "-n", "10", "--temp", "0", "-c", "96", "-t", "1"}, input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("has no chat template"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("using ChatML"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[conversation reset]"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("error: the message is too long"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("context holds 96"), std::string::npos) << r.err;

  // The same conversation in-process: stdout is each reply followed by a newline.
  LlamaModel model(tiny_model_dir());
  const Tokenizer tok = Tokenizer::load(tiny_model_dir());
  const ChatTemplate tmpl = ChatTemplate::load(tiny_model_dir());
  ThreadPool pool(1);
  ChatSessionOptions opt;
  opt.max_new_tokens = 10;
  opt.sampler.temperature = 0.0f;
  ChatSession s(model, pool, tok, tmpl, 96, opt);
  std::string expected = s.send("Hello there", {}).text + "\n";
  expected += s.send("What is your name?", {}).text + "\n";
  s.reset();
  EXPECT_THROW(s.send(too_long, {}), Error);
  expected += s.send("Once upon a time", {}).text + "\n";
  EXPECT_EQ(r.out, expected);
}

TEST(ChatCli, ExitCommandAndBadTemplate) {
  auto r = run_awq({"chat", tiny_model_dir(), "-n", "4", "--temp", "0", "-t", "1"}, "/exit\nHello\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");  // nothing after /exit is answered
  r = run_awq({"chat", tiny_model_dir(), "--chat-template", "nosuch"}, "Hello\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown builtin chat template 'nosuch'"), std::string::npos) << r.err;
  // A builtin override: no fallback notice.
  r = run_awq({"chat", tiny_model_dir(), "--chat-template", "llama2", "-n", "4", "--temp", "0", "-t", "1"}, "Hi\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("has no chat template"), std::string::npos) << r.err;
  EXPECT_FALSE(r.out.empty());
}

// Reads from fd until `needle` has appeared in `acc` or the deadline passes.
bool read_until(int fd, std::string& acc, const std::string& needle, int timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (acc.find(needle) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, int(left)) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return acc.find(needle) != std::string::npos;
    acc.append(buf, size_t(n));
  }
  return true;
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// Reads until `needle` followed by a line end occurs `count` times (or the deadline passes).
bool read_until_count(int fd, std::string& acc, const std::string& needle, size_t count, int timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto done = [&] {
    if (count_of(acc, needle) < count) return false;
    return acc.find('\n', acc.rfind(needle)) != std::string::npos;
  };
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    read_until(fd, acc, "\x01never", 100);
  }
  return true;
}

TEST(ChatCli, CtrlCStopsTheReplyNotTheSession) {
  int in[2], err[2];
  ASSERT_EQ(::pipe(in), 0);
  ASSERT_EQ(::pipe(err), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  posix_spawn_file_actions_addclose(&fa, err[0]);
  const std::string bin = AWQ_BINARY, model = tiny_model_dir();
  // A long reply (many tokens, stop strings unlikely), so Ctrl-C arrives while it streams.
  std::vector<std::string> args = {bin, "chat", model, "-n", "100000", "--temp", "0", "-c", "256", "-t", "1", "-v"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(err[1]);
  const std::string msg = "Once upon a time\n";
  ASSERT_EQ(::write(in[1], msg.data(), msg.size()), ssize_t(msg.size()));
  std::string err_text;
  // The fallback notice comes before the reply starts; give generation a moment to begin.
  ASSERT_TRUE(read_until(err[0], err_text, "using ChatML", 60000)) << err_text;
  ::usleep(300 * 1000);
  ::kill(pid, SIGINT);
  const bool stopped = read_until(err[0], err_text, "[reply stopped]", 60000);
  // The session goes on: another message gets a whole reply (-v prints a stats line per reply) ...
  const std::string msg2 = "Hello\n";
  (void)!::write(in[1], msg2.data(), msg2.size());
  // Each finished reply ends with its stats line "[prompt ... | stop: REASON]".
  const bool second_reply = read_until_count(err[0], err_text, "| stop: ", 2, 60000);
  // ... and Ctrl-C at the prompt ends the program (exit status 130).
  ::usleep(100 * 1000);
  ::kill(pid, second_reply ? SIGINT : SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(in[1]);
  read_until(err[0], err_text, "\x01never", 1000);
  ::close(err[0]);
  EXPECT_TRUE(stopped) << err_text;
  EXPECT_TRUE(second_reply) << err_text;
  ASSERT_TRUE(WIFEXITED(status)) << err_text;
  EXPECT_EQ(WEXITSTATUS(status), 130) << err_text;
  EXPECT_NE(err_text.find("stop: interrupted"), std::string::npos) << err_text;
}

}  // namespace
}  // namespace awq
