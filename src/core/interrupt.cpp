#include "core/interrupt.h"

#include <csignal>
#include <unistd.h>

#include "core/error.h"

namespace awq {

namespace {
volatile std::sig_atomic_t g_signal = 0;

void on_signal(int sig) {
  if (g_signal) _exit(128 + sig);  // second Ctrl-C: stop now
  g_signal = sig;
}
}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() { return g_signal != 0; }

void throw_if_interrupted() {
  if (g_signal) throw Error("interrupted by signal " + std::to_string(int(g_signal)) + "; no output was written");
}

}  // namespace awq
