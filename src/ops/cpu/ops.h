// Reference CPU ops of the Llama-family decoder (f32 activations).
#pragma once
#include <cstdint>

#include "core/thread_pool.h"
#include "ops/cpu/attention.h"  // attention() and AttentionShape live there

namespace awq {

// y[i] = x[i] * rsqrt(mean(x[i]^2) + eps) * weight, per row. x, y: [n, d] (may alias); weight: [d].
void rmsnorm(const float* x, const float* weight, int64_t n, int64_t d, double eps, float* y);

// Rotary embedding, HF rotate-half convention: within each head, element j pairs with
// j + head_dim/2 at frequency inv_freq[j].
// x: [n, n_heads, head_dim] in place; pos: [n] absolute positions; inv_freq: [head_dim/2].
void rope_rotate_half(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t* pos,
                      const float* inv_freq);

// out[i] = silu(gate[i]) * up[i]. gate, up, out: [n] (out may alias gate).
void silu_mul(const float* gate, const float* up, int64_t n, float* out);

// y[i] += x[i] (the residual stream). y, x: [n].
void add_inplace(float* y, const float* x, int64_t n);

// In-place softmax of x: [n], stable (max subtracted).
void softmax(float* x, int64_t n);

}  // namespace awq
