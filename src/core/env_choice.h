// Switches read from the environment (AWQ_CPU_ISA, AWQ_MATMUL, AWQ_W4_ACT, AWQ_CUDA_PDL,
// AWQ_W4A16_KERNEL, AWQ_W4A16_WGMMA, AWQ_W4A16_XSMEM): one parser, so every switch accepts the same way and a typo
// fails with the same kind of message instead of being taken silently for the default.
// C++17: the CUDA sources include it.
#pragma once
#include <initializer_list>

namespace awq {

struct EnvChoice {
  const char* value;    // what the variable may be set to
  const char* meaning;  // for the error message: what that value does
};

// The index in `choices` of `value` (the variable's text; nullptr or "" when unset: returns
// `unset`). Any other value throws awq::Error naming the variable, the value and every accepted
// value with its meaning, e.g. "AWQ_CUDA_PDL='on': expected 0 (...), 1 (...) or 2 (...); unset
// it for the default".
int env_choice(const char* name, const char* value, std::initializer_list<EnvChoice> choices, int unset);

}  // namespace awq
