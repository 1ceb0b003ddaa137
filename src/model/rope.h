// RoPE inverse frequencies, with the rope_scaling variants HF applies to them.
#pragma once
#include <vector>

#include "io/model_config.h"

namespace awq {

// inv_freq: [head_dim / 2], computed in f32 as transformers does:
// 1 / theta^(2j / head_dim), then "linear" (/ factor) or "llama3" (wavelength-dependent) scaling.
std::vector<float> rope_inv_freq(const ModelConfig& c);

}  // namespace awq
