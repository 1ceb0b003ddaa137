#include "model/kv_cache.h"

#include <algorithm>

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

}  // namespace awq
