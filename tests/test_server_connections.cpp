// How the server takes connections: a burst of clients connecting at once is queued by the
// kernel (the listen backlog), not dropped before the server accepts them.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <vector>

#include "support/live_server.h"

namespace awq {
namespace {

using test::LiveServer;

// A non-blocking connect to 127.0.0.1:port; the socket, or -1.
int start_connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Whether the connect of `fd` completed before `deadline` (the handshake is done when the
// socket turns writable without an error).
bool connected_by(int fd, std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, int(std::max<int64_t>(0, left.count()))) != 1) return false;
  int err = 0;
  socklen_t len = sizeof err;
  return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}

// 64 clients connect while the server accepts none: every handshake completes in the kernel's
// queue. With cpp-httplib's own backlog of 5 only 6 did; the rest had their SYNs dropped (and
// retried for seconds), which under a burst of real clients ended in read errors.
// The 5 s bound is a liveness limit (a loopback handshake takes microseconds; a dropped SYN
// is retried only after 1 s, 3 s, ... and is dropped again while nothing accepts).
TEST(ServerConnections, ABurstOfConnectionsWaitsInTheListenQueue) {
  LiveServer s({}, {}, 2, /*serving=*/false);
  constexpr int kBurst = 64;
  std::vector<int> fds;
  for (int i = 0; i < kBurst; ++i) {
    fds.push_back(start_connect(s.port()));
    ASSERT_GE(fds.back(), 0) << "connect " << i << ": errno " << errno;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int connected = 0;
  for (int fd : fds) connected += connected_by(fd, deadline) ? 1 : 0;
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(connected, kBurst);

  // The server then accepts the queued (closed) connections and still answers.
  s.serve();
  auto r = s.client()->Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace awq
