// Pieces of the AWQ scale search (quant/awq_search.cpp) that the GPU search
// (ops/cuda/awq_search_cuda.cu) shares with the CPU one, so that both pick the same search set
// and compute the candidate scales with the same host arithmetic.
#pragma once
#include <cstdint>
#include <vector>

namespace awq::detail {

// Which calibration data the candidate losses are measured on.
struct SearchSet {
  std::vector<int64_t> seqs;  // whole sequences, for self_attn
  std::vector<int64_t> rows;  // token rows, for the per-token modules
};

// search_tokens <= 0: every sequence and row; else ceil(search_tokens / seqlen) evenly spaced
// sequences and search_tokens evenly spaced rows.
SearchSet pick_search_set(int64_t n_seq, int64_t seqlen, int64_t search_tokens);

// AutoAWQ's w_mean for duo scaling: |w| normalised by its group's max, averaged over the
// output rows of all linears of the group. ws: {[out_i, in]} -> [in]
std::vector<float> mean_normalised_weight(const std::vector<const std::vector<float>*>& ws, int64_t in, int group);

// The candidate scales of ratio alpha: x_mean^alpha (duo: / (w_mean^(1-alpha) + 1e-4)),
// clamped at 1e-4, normalised by sqrt(max * min). x_mean, w_mean (nullable): [in] -> [in]
std::vector<float> candidate_scales(const std::vector<float>& x_mean, const std::vector<float>* w_mean, double ratio);

}  // namespace awq::detail
