// `awq serve` as a real process: SIGTERM / SIGINT with requests in flight end them properly
// and exit 0; the chat web page at /, driven in headless Chromium over the DevTools protocol
// (--remote-debugging-pipe), sends a message and shows the streamed reply.
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/child_process.h"
#include "support/live_server.h"
#include "support/shared_data.h"

namespace awq {
namespace {

using nlohmann::json;
using test::ChildProcess;
using namespace std::chrono_literals;

// `awq serve` on a free port; port() once it listens.
struct ServeProcess {
  ChildProcess proc;
  int port = 0;
  explicit ServeProcess(std::vector<std::string> extra)
      : proc([&] {
          std::vector<std::string> a = {AWQ_BINARY, "serve", test::tiny_model_dir(), "--port", "0", "-t", "2"};
          a.insert(a.end(), extra.begin(), extra.end());
          return a;
        }()) {
    if (!proc.wait_for_stderr("at http://127.0.0.1:", 60s)) {
      ADD_FAILURE() << "awq serve did not start:\n" << proc.err();
      return;
    }
    const std::string err = proc.err();
    port = std::stoi(err.substr(err.find("at http://127.0.0.1:") + 20));
  }
  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
    c->set_read_timeout(60);
    return c;
  }
};

// Streams a long completion in a thread, recording the body.
struct StreamingClient {
  std::atomic<bool> got_chunk{false};
  std::string body;
  std::thread thread;
  StreamingClient(const ServeProcess& s, int max_tokens) {
    thread = std::thread([this, &s, max_tokens] {
      auto c = s.client();
      httplib::Request req;
      req.method = "POST";
      req.path = "/v1/completions";
      req.body = json{{"model", "tiny-llama-gqa"}, {"prompt", "Once"}, {"max_tokens", max_tokens},
                      {"stream", true}, {"ignore_eos", true}, {"temperature", 0}}.dump();
      req.set_header("Content-Type", "application/json");
      req.content_receiver = [this](const char* d, size_t n, uint64_t, uint64_t) {
        body.append(d, n);
        got_chunk = true;
        return true;
      };
      c->send(req);
    });
  }
  void wait_first_chunk() {
    for (int i = 0; i < 6000 && !got_chunk; ++i) std::this_thread::sleep_for(10ms);
  }
};

void expect_clean_exit(ChildProcess& p, std::chrono::seconds within) {
  const auto st = p.wait(within);
  ASSERT_TRUE(st.has_value()) << "awq serve did not exit within " << within.count() << " s";
  ASSERT_TRUE(WIFEXITED(*st)) << "killed by signal " << WTERMSIG(*st) << "\n" << p.err();
  EXPECT_EQ(WEXITSTATUS(*st), 0) << p.err();
  EXPECT_NE(p.err().find("awq serve: stopped"), std::string::npos) << p.err();
}

// SIGTERM with a grace of 0: the in-flight stream ends with finish_reason "abort" + [DONE].
TEST(ServerProcess, SigtermAbortsInFlightStreamsAndExitsZero) {
  ServeProcess s({"--shutdown-grace", "0"});
  ASSERT_GT(s.port, 0);
  StreamingClient c(s, 2000);
  c.wait_first_chunk();
  ASSERT_TRUE(c.got_chunk);
  s.proc.signal(SIGTERM);
  expect_clean_exit(s.proc, 60s);
  c.thread.join();
  const test::SseBody sse = test::parse_sse(c.body);
  EXPECT_TRUE(sse.done);
  EXPECT_EQ(sse.finish_reason, "abort");
}

// SIGINT with a grace far longer than the request needs (even under ASan on a loaded
// machine): the short in-flight request runs to its end ("length"), then the server exits.
TEST(ServerProcess, SigintLetsInFlightRequestsFinish) {
  ServeProcess s({"--shutdown-grace", "600"});
  ASSERT_GT(s.port, 0);
  StreamingClient c(s, 16);
  c.wait_first_chunk();
  ASSERT_TRUE(c.got_chunk);
  s.proc.signal(SIGINT);
  expect_clean_exit(s.proc, 600s);
  c.thread.join();
  const test::SseBody sse = test::parse_sse(c.body);
  EXPECT_TRUE(sse.done);
  EXPECT_EQ(sse.finish_reason, "length");
}

// The prompt cache from the command line: the same prompt twice on one slot; the second
// request reuses all but the last prompt position by default (usage's cached_tokens, the
// start-up line says "prompt cache on") and none with --no-cache-prompt.
TEST(ServerProcess, NoCachePromptFlagTurnsThePromptCacheOff) {
  for (const bool off : {false, true}) {
    std::vector<std::string> extra = {"--parallel", "1"};
    if (off) extra.push_back("--no-cache-prompt");
    ServeProcess s(extra);
    ASSERT_GT(s.port, 0);
    EXPECT_NE(s.proc.err().find(off ? "prompt cache off" : "prompt cache on"), std::string::npos) << s.proc.err();
    auto c = s.client();
    const std::string body = json{{"model", "tiny-llama-gqa"}, {"prompt", "The history of the old town"},
                                  {"max_tokens", 2}, {"temperature", 0}}.dump();
    int64_t cached = -1, prompt_tokens = 0;
    for (int i = 0; i < 2; ++i) {
      auto r = c->Post("/v1/completions", body, "application/json");
      ASSERT_TRUE(r) << "no reply";
      ASSERT_EQ(r->status, 200) << r->body;
      const json usage = json::parse(r->body)["usage"];
      prompt_tokens = usage["prompt_tokens"].get<int64_t>();
      cached = usage.contains("prompt_tokens_details") ? usage["prompt_tokens_details"].value("cached_tokens", int64_t(0))
                                                       : int64_t(0);
    }
    // The last prompt position is always prefilled: its logits give the first token.
    EXPECT_EQ(cached, off ? 0 : prompt_tokens - 1) << (off ? "--no-cache-prompt" : "default");
    s.proc.signal(SIGTERM);
    expect_clean_exit(s.proc, 60s);
  }
}

// ---------------------------------------------------------------------------------------------
// Chromium over the DevTools protocol: JSON messages terminated by '\0' on fds 3 / 4.
// ---------------------------------------------------------------------------------------------
class DevTools {
 public:
  explicit DevTools(ChildProcess& browser) : p_(browser) {}

  // Sends method(params) (to a session when given) and returns the result; fails the test
  // (returns null) on an error reply or after `timeout`.
  json call(const std::string& method, json params = json::object(), const std::string& session = "",
            std::chrono::milliseconds timeout = 20s) {
    json msg = {{"id", ++id_}, {"method", method}, {"params", std::move(params)}};
    if (!session.empty()) msg["sessionId"] = session;
    std::string bytes = msg.dump();
    bytes.push_back('\0');
    if (::write(p_.write_fd(), bytes.data(), bytes.size()) != ssize_t(bytes.size())) {
      ADD_FAILURE() << "cannot write to chromium's DevTools pipe";
      return nullptr;
    }
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      size_t end;
      while ((end = buf_.find('\0')) != std::string::npos) {
        json reply = json::parse(buf_.substr(0, end), nullptr, false);
        buf_.erase(0, end + 1);
        if (!reply.is_object() || !reply.contains("id") || reply["id"] != id_) continue;  // events
        if (reply.contains("error")) {
          ADD_FAILURE() << method << ": " << reply["error"].dump();
          return nullptr;
        }
        return reply["result"];
      }
      pollfd pfd{p_.read_fd(), POLLIN, 0};
      if (::poll(&pfd, 1, 100) > 0) {
        char chunk[65536];
        const ssize_t n = ::read(p_.read_fd(), chunk, sizeof(chunk));
        if (n <= 0) {
          ADD_FAILURE() << "chromium closed its DevTools pipe:\n" << p_.err();
          return nullptr;
        }
        buf_.append(chunk, size_t(n));
      }
    }
    ADD_FAILURE() << method << ": no reply from chromium in time";
    return nullptr;
  }

  // Evaluates a JavaScript expression in the page; its value.
  json eval(const std::string& session, const std::string& expr) {
    json r = call("Runtime.evaluate", {{"expression", expr}, {"returnByValue", true}}, session);
    return r.is_object() && r.contains("result") ? r["result"].value("value", json()) : json();
  }

 private:
  ChildProcess& p_;
  std::string buf_;
  int id_ = 0;
};

std::string chromium_path() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (std::filesystem::exists(p)) return p;
  return "";
}

TEST(WebPage, ChromiumSendsAMessageAndShowsTheStreamedReply) {
  const std::string chromium = chromium_path();
  ASSERT_FALSE(chromium.empty()) << "chromium is not installed (it runs this test headless): run scripts/install-deps";
  ServeProcess s({"--parallel", "2"});
  ASSERT_GT(s.port, 0);
  const std::string base = "http://127.0.0.1:" + std::to_string(s.port);
  // What the page should show: the same greedy chat request through the API.
  const json request = {{"model", "tiny-llama-gqa"}, {"messages", {{{"role", "user"}, {"content", "Hello there"}}}},
                        {"temperature", 0}, {"max_tokens", 12}};
  auto want = s.client()->Post("/v1/chat/completions", request.dump(), "application/json");
  ASSERT_TRUE(want);
  ASSERT_EQ(want->status, 200) << want->body;
  const std::string want_text = json::parse(want->body)["choices"][0]["message"]["content"];
  ASSERT_FALSE(want_text.empty());

  test::TempDir profile;
  ChildProcess browser({chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-extensions", "--user-data-dir=" + profile.path(), "--remote-debugging-pipe",
                        base + "/?temperature=0&max_tokens=12"},
                       /*with_pipes=*/true);
  DevTools dt(browser);
  json targets = dt.call("Target.getTargets");
  ASSERT_TRUE(targets.is_object()) << browser.err();
  std::string target;
  for (const json& t : targets["targetInfos"])
    if (t["type"] == "page") target = t["targetId"];
  ASSERT_FALSE(target.empty()) << targets.dump();
  json attached = dt.call("Target.attachToTarget", {{"targetId", target}, {"flatten", true}});
  ASSERT_TRUE(attached.is_object());
  const std::string session = attached["sessionId"];

  // Wait for the page to load its model id, then type and send a message like a user.
  json model;
  for (int i = 0; i < 1200 && model != "tiny-llama-gqa"; ++i) {  // up to 60 s
    model = dt.eval(session, "document.getElementById('model') && document.getElementById('model').textContent");
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(model, "tiny-llama-gqa");
  dt.eval(session, "document.getElementById('input').value = 'Hello there';"
                   "document.getElementById('form').requestSubmit(); true");
  json state;
  for (int i = 0; i < 2400; ++i) {  // up to 120 s (ASan builds on a loaded machine)
    state = dt.eval(session, "document.getElementById('status').dataset.state");
    if (state == "done" || state == "error") break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(state, "done") << dt.eval(session, "document.getElementById('status').textContent");
  EXPECT_EQ(dt.eval(session, "document.getElementById('reply-0').textContent"), want_text);
  EXPECT_EQ(dt.eval(session, "document.querySelector('.msg.user').textContent"), "Hello there");
  dt.call("Browser.close", json::object(), "", 5s);
  browser.wait(10s);
}

}  // namespace
}  // namespace awq
