// The reference model (../shared/models/tiny-llama-gqa), loaded once per test process and
// shared by the tests that only read it.
#pragma once
#include "model/llama_model.h"
#include "support/shared_data.h"

namespace awq::test {

inline LlamaModel& tiny_model() {
  static LlamaModel m(tiny_model_dir());
  return m;
}

}  // namespace awq::test
