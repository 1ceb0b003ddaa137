// The key/value cache of one sequence: per layer, k and v rows for positions [0, ctx).
#pragma once
#include <cstdint>
#include <vector>

namespace awq {

struct KvCache {
  int64_t ctx = 0;     // capacity in positions
  int64_t kv_dim = 0;  // n_kv_heads * head_dim
  int64_t n_past = 0;  // positions filled
  std::vector<std::vector<float>> k, v;  // [n_layers][ctx * kv_dim]

  KvCache(int64_t n_layers, int64_t ctx_, int64_t kv_dim_) : ctx(ctx_), kv_dim(kv_dim_) {
    k.assign(size_t(n_layers), std::vector<float>(size_t(ctx_ * kv_dim_)));
    v.assign(size_t(n_layers), std::vector<float>(size_t(ctx_ * kv_dim_)));
  }
  void clear() { n_past = 0; }
};

}  // namespace awq
