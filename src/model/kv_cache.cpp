#include "model/kv_cache.h"

#include <algorithm>

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

void KvCache::truncate(int64_t n) {
  if (n < 0 || n > n_past)
    throw Error("truncate: " + std::to_string(n) + " positions asked of a sequence of " + std::to_string(n_past));
  n_past = n;
}

void KvCache::copy_prefix_from(const KvCache& src, int64_t n) {
  if (&src == this) throw Error("copy_prefix_from: a cache cannot copy from itself");
  if (src.type_ != type_ || src.n_layers_ != n_layers_ || src.ctx != ctx || src.kv_dim != kv_dim)
    throw Error("copy_prefix_from: the caches differ in shape or type");
  if (n < 0 || n > src.n_past)
    throw Error("copy_prefix_from: " + std::to_string(n) + " positions asked of a cache holding " + std::to_string(src.n_past));
  const auto elems = static_cast<std::ptrdiff_t>(n * kv_dim);
  for (size_t l = 0; l < static_cast<size_t>(n_layers_); ++l) {
    if (type_ == KvType::F16) {
      std::copy_n(src.k16_[l].begin(), elems, k16_[l].begin());
      std::copy_n(src.v16_[l].begin(), elems, v16_[l].begin());
    } else {
      std::copy_n(src.k32_[l].begin(), elems, k32_[l].begin());
      std::copy_n(src.v32_[l].begin(), elems, v32_[l].begin());
    }
  }
  n_past = n;
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

int64_t kv_cache_bytes(int64_t n_layers, int64_t kv_dim, int64_t ctx, KvType type) {
  return 2 * n_layers * ctx * kv_dim * int64_t(kv_type_size(type));
}

std::string context_fit_hint(int64_t fit_positions, int sequences) {
  if (fit_positions < 256) return "";
  const std::string ctx = std::to_string(fit_positions / 256 * 256);
  return "a context of " + ctx + " positions would fit (--ctx " + ctx +
         (sequences > 1 ? ", or fewer sequences with --parallel" : "") + ")";
}

std::string kv_cache_refusal(int64_t n_layers, int64_t kv_dim, int sequences, int64_t ctx, KvType type,
                             int64_t available_bytes) {
  const int64_t per_position = kv_cache_bytes(n_layers, kv_dim, 1, type) * sequences;
  const int64_t bytes = per_position * ctx;
  if (available_bytes < 0 || bytes <= available_bytes) return "";
  std::string msg = "the KV cache does not fit in memory: " + std::to_string(sequences) +
                    (sequences == 1 ? " sequence" : " sequences") + " of " + std::to_string(ctx) +
                    (sequences == 1 ? " positions needs " : " positions need ") + gib_text(bytes) + " GiB (" +
                    kv_type_name(type) + " keys and values) and the machine has " + gib_text(available_bytes) +
                    " GiB available; ";
  const std::string fit = context_fit_hint(available_bytes / 10 * 9 / per_position, sequences);
  msg += fit.empty() ? "not even 256 positions fit" : fit;
  if (type == KvType::F32) msg += "; --kv-type f16 halves it";
  return msg;
}

void check_kv_caches_fit(int64_t n_layers, int64_t kv_dim, int sequences, int64_t ctx, KvType type) {
  const std::string refusal = kv_cache_refusal(n_layers, kv_dim, sequences, ctx, type, available_memory_bytes());
  if (!refusal.empty()) throw Error(refusal);
}

}  // namespace awq
