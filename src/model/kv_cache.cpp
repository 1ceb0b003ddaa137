#include "model/kv_cache.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/memory_usage.h"

#include "ops/cpu/f16_rows.h"

namespace awq {

void KvLayer::store(int64_t pos, int64_t n, const float* k_rows, const float* v_rows) const {
  const int64_t count = n * kv_dim, at = pos * kv_dim;
  if (type == KvType::F32) {
    std::copy(k_rows, k_rows + count, static_cast<float*>(k) + at);
    std::copy(v_rows, v_rows + count, static_cast<float*>(v) + at);
  } else {
    f32_to_f16_row(k_rows, static_cast<uint16_t*>(k) + at, count);
    f32_to_f16_row(v_rows, static_cast<uint16_t*>(v) + at, count);
  }
}

KvCache::KvCache(int64_t n_layers, int64_t ctx_, int64_t kv_dim_, KvType type)
    : ctx(ctx_), kv_dim(kv_dim_), type_(type), n_layers_(n_layers) {
  const size_t per_layer = static_cast<size_t>(ctx_ * kv_dim_), layers = static_cast<size_t>(n_layers);
  if (type == KvType::F16) {
    k16_.assign(layers, std::vector<uint16_t>(per_layer));
    v16_.assign(layers, std::vector<uint16_t>(per_layer));
  } else {
    k32_.assign(layers, std::vector<float>(per_layer));
    v32_.assign(layers, std::vector<float>(per_layer));
  }
}

KvLayer KvCache::layer(int l) {
  const size_t i = static_cast<size_t>(l);
  if (type_ == KvType::F16) return {type_, k16_[i].data(), v16_[i].data(), ctx, kv_dim};
  return {type_, k32_[i].data(), v32_[i].data(), ctx, kv_dim};
}

KvView KvCache::view(int l) const {
  const size_t i = static_cast<size_t>(l);
  if (type_ == KvType::F16) return KvView::f16(k16_[i].data(), v16_[i].data());
  return KvView::f32(k32_[i].data(), v32_[i].data());
}

int64_t KvCache::bytes() const {
  int64_t b = 0;
  for (const auto& v : {&k16_, &v16_}) for (const auto& l : *v) b += int64_t(l.size() * sizeof(uint16_t));
  for (const auto& v : {&k32_, &v32_}) for (const auto& l : *v) b += int64_t(l.size() * sizeof(float));
  return b;
}

std::string kv_cache_refusal(int64_t n_layers, int64_t kv_dim, int sequences, int64_t ctx, KvType type,
                             int64_t available_bytes) {
  const int64_t per_position = 2 * n_layers * kv_dim * int64_t(kv_type_size(type)) * sequences;
  const int64_t bytes = per_position * ctx;
  if (available_bytes < 0 || bytes <= available_bytes) return "";
  const auto gib = [](int64_t b) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.2f", double(b) / double(int64_t(1) << 30));
    return std::string(buf);
  };
  std::string msg = "the KV cache does not fit in memory: " + std::to_string(sequences) +
                    (sequences == 1 ? " sequence" : " sequences") + " of " + std::to_string(ctx) +
                    (sequences == 1 ? " positions needs " : " positions need ") +
                    gib(bytes) + " GiB (" + kv_type_name(type) + " keys and values) and the machine has " +
                    gib(available_bytes) + " GiB available; ";
  const int64_t fit = available_bytes / 10 * 9 / per_position / 256 * 256;
  if (fit > 0)
    msg += "a context of " + std::to_string(fit) + " positions would fit (--ctx " + std::to_string(fit) +
           (sequences > 1 ? ", or fewer sequences with --parallel" : "") + ")";
  else
    msg += "not even 256 positions fit";
  if (type == KvType::F32) msg += "; --kv-type f16 halves it";
  return msg;
}

void check_kv_caches_fit(int64_t n_layers, int64_t kv_dim, int sequences, int64_t ctx, KvType type) {
  const std::string refusal = kv_cache_refusal(n_layers, kv_dim, sequences, ctx, type, available_memory_bytes());
  if (!refusal.empty()) throw Error(refusal);
}

}  // namespace awq
