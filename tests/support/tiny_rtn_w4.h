// The reference model quantized with RTN (4 bits, group 128: quantize_model's defaults) into a
// folder of `tmp`, for tests that need a W4 model. Header-only test helper.
#pragma once
#include <string>

#include "core/thread_pool.h"
#include "quant/quantize_model.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"

namespace awq::test {

// The quantized model's folder (inside tmp, removed with it).
inline std::string quantize_tiny_rtn_w4(ThreadPool& pool, const TempDir& tmp) {
  QuantizeOptions o;
  o.model_dir = tiny_model_dir();
  o.out_dir = tmp.file("rtn-w4-g128");
  o.method = "rtn";
  quantize_model(pool, o);
  return o.out_dir;
}

}  // namespace awq::test
