// Cooperative Ctrl-C / SIGTERM: long jobs poll interrupted() between steps and unwind with an
// awq::Error, so their RAII guards remove temporary output. A second signal exits at once.
#pragma once

namespace awq {

void install_interrupt_handler();
bool interrupted();
// Throws awq::Error("interrupted") when a signal arrived.
void throw_if_interrupted();

}  // namespace awq
