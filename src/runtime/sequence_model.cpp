#include "runtime/sequence_model.h"

#include "core/error.h"
#include "runtime/perplexity.h"

namespace awq {

double SequenceModel::forward_nll(const int32_t* tokens, int64_t n) {
  std::vector<float> logits;
  forward(tokens, n, true, logits);  // [n, vocab]
  const int64_t vocab = config().vocab_size;
  double sum = 0.0;
  // logits row i predicts tokens[i + 1]
  for (int64_t i = 0; i + 1 < n; ++i) sum += token_nll(logits.data() + i * vocab, vocab, tokens[i + 1]);
  return sum;
}

void CpuSequence::truncate(int64_t n) { cache_->truncate(n); }

}  // namespace awq
