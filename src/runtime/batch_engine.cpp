#include "runtime/batch_engine.h"

#include <algorithm>

#include "core/error.h"

namespace awq {

CpuBatchEngine::CpuBatchEngine(LlamaModel& model, ThreadPool& pool, int slots, int64_t ctx, KvType kv_type)
    : model_(model),
      pool_(pool),
      ctx_(ctx),
      lin_(slots <= kGemvLogitsMaxSlots ? Linears::RowExactGemvLogits : Linears::RowExact),
      decoder_(model, lin_) {
  if (slots < 1) throw Error("the engine needs at least 1 slot (got " + std::to_string(slots) + ")");
  // All the slots' caches checked at once, before the first is allocated (new_cache would check
  // each alone again).
  const ModelConfig& c = model.config();
  check_kv_caches_fit(c.num_layers, c.kv_dim(), slots, ctx, kv_type);
  for (int i = 0; i < slots; ++i) caches_.emplace_back(c.num_layers, ctx, c.kv_dim(), kv_type);
}

void CpuBatchEngine::copy_prefix(int src, int dst, int64_t n) {
  caches_.at(size_t(dst)).copy_prefix_from(caches_.at(size_t(src)), n);
}

void CpuBatchEngine::prefill(int slot, const int32_t* tokens, int64_t n, bool all_logits,
                             std::vector<float>& logits) {
  // RowExact: a prompt's pieces (chunks, a cached prefix's rest) give the whole prefill's bits.
  model_.forward(pool_, tokens, n, caches_.at(size_t(slot)), all_logits, logits, lin_);
}

void CpuBatchEngine::decode(const int* slots, const int32_t* tokens, int B, std::vector<float>& logits) {
  step_caches_.clear();
  for (int b = 0; b < B; ++b) {
    if (slots[b] < 0 || slots[b] >= this->slots())
      throw Error("decode step: slot " + std::to_string(slots[b]) + " is outside 0.." + std::to_string(this->slots() - 1));
    KvCache* c = &caches_[size_t(slots[b])];
    if (std::find(step_caches_.begin(), step_caches_.end(), c) != step_caches_.end())
      throw Error("decode step: slot " + std::to_string(slots[b]) + " appears twice in one batch");
    step_caches_.push_back(c);
  }
  decoder_.step(pool_, tokens, step_caches_.data(), B, logits);
}

std::string CpuBatchEngine::describe() const {
  return "cpu, " + std::to_string(pool_.size()) + " threads";
}

}  // namespace awq
