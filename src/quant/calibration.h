// Calibration windows for the AWQ search.
// The files are read whole, joined with a blank line between them, and encoded once without
// special tokens. The token stream is cut into N = floor(tokens / (seqlen - 1)) consecutive
// chunks of seqlen - 1 tokens; a window is [BOS] + chunk, exactly as the perplexity windows
// (and as the model sees text at inference: BOS first). n_samples distinct chunks are drawn
// uniformly with the seed (a partial Fisher-Yates shuffle over mt19937_64) and kept in text
// order. A tokenizer without BOS gives chunks of seqlen tokens and no BOS.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace awq {

struct CalibOptions {
  std::vector<std::string> files;
  int64_t n_samples = 128;
  int64_t seqlen = 512;
  uint64_t seed = 42;
};

struct CalibWindows {
  int64_t n_samples = 0, seqlen = 0;
  std::vector<int32_t> ids;          // [n_samples, seqlen]
  std::vector<int64_t> chunk_index;  // [n_samples] which chunk of the stream each window is
  int64_t stream_tokens = 0, stream_chunks = 0;
};

// Throws awq::Error for a missing/empty file or text too short for n_samples windows.
CalibWindows make_calibration_windows(const Tokenizer& tok, const CalibOptions& opt);

}  // namespace awq
