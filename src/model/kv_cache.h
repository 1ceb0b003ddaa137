// The key/value cache of one sequence: per layer, k and v rows for positions [0, ctx), stored
// as fp16 (the default: half the memory and half the bytes a decode step's attention reads)
// or f32 (core/kv_type.h). Keys and values are rounded to the cache's type when written (after
// RoPE) and widened back to f32 inside attention (ops/cpu/attention.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/kv_type.h"
#include "ops/cpu/attention.h"

namespace awq {

// One layer's cache, writable: k, v: [ctx, kv_dim] elements of `type` (uint16_t fp16 bits or
// float). Also made over plain f32 buffers (the AWQ search's calibration forward).
struct KvLayer {
  KvType type;
  void* k;
  void* v;
  int64_t ctx, kv_dim;

  // Writes rows [pos, pos + n) from f32 keys and values, rounded to `type`.
  // k, v: [n, kv_dim]; pos + n <= ctx.
  void store(int64_t pos, int64_t n, const float* k_rows, const float* v_rows) const;
  KvView view() const { return {type, k, v}; }
};

class KvCache {
 public:
  KvCache(int64_t n_layers, int64_t ctx, int64_t kv_dim, KvType type = KvType::F16);

  int64_t ctx = 0;     // capacity in positions
  int64_t kv_dim = 0;  // n_kv_heads * head_dim
  int64_t n_past = 0;  // positions filled

  KvType type() const { return type_; }
  int64_t n_layers() const { return n_layers_; }
  KvLayer layer(int l);
  KvView view(int l) const;
  // Bytes of keys and values held: 2 * n_layers * ctx * kv_dim * kv_type_size(type).
  int64_t bytes() const;
  void clear() { n_past = 0; }
  // Keeps positions [0, n) (0 <= n <= n_past; awq::Error otherwise): later tokens overwrite the rest.
  void truncate(int64_t n);
  // Positions [0, n) of src (the same layers, ctx, kv_dim and type; n <= src.n_past) become
  // this cache's whole content (n_past = n): a prompt prefix computed once, shared.
  void copy_prefix_from(const KvCache& src, int64_t n);

 private:
  KvType type_;
  int64_t n_layers_;
  // The type's pair is [n_layers][ctx * kv_dim]; the other pair is empty.
  std::vector<std::vector<uint16_t>> k16_, v16_;  // fp16 bits
  std::vector<std::vector<float>> k32_, v32_;
};

// Bytes of one sequence's cache: 2 (keys, values) x n_layers x ctx x kv_dim x the element size
// (what KvCache::bytes() holds once allocated).
int64_t kv_cache_bytes(int64_t n_layers, int64_t kv_dim, int64_t ctx, KvType type);

// The advice of an out-of-memory refusal (this file's and the CUDA engine's,
// ops/cuda/cuda_memory_plan.h): "a context of N positions would fit (--ctx N[, or fewer sequences
// with --parallel])", N = fit_positions rounded down to a multiple of 256; "" under 256.
std::string context_fit_hint(int64_t fit_positions, int sequences);

// KV caches are allocated whole when an engine starts (and zero-filled: resident at once). ""
// where `sequences` caches of ctx positions (n_layers layers of kv_dim, `type`) fit in
// available_bytes (available_memory_bytes(); < 0: unknown, nothing refused); else a one-line
// refusal with the figures and the largest context (a multiple of 256) that fits in 90 % of it.
// Before, an oversized --ctx or --parallel ended in "out of memory" (std::bad_alloc) or the
// kernel's OOM killer.
std::string kv_cache_refusal(int64_t n_layers, int64_t kv_dim, int sequences, int64_t ctx, KvType type,
                             int64_t available_bytes);
// Throws awq::Error with kv_cache_refusal's message where it is not "" on this machine.
void check_kv_caches_fit(int64_t n_layers, int64_t kv_dim, int sequences, int64_t ctx, KvType type);

}  // namespace awq
