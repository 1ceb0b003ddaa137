#include "quant/calibration.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "core/error.h"

namespace awq {

CalibWindows make_calibration_windows(const Tokenizer& tok, const CalibOptions& opt) {
  if (opt.files.empty()) throw Error("calibration: no --calib file given");
  if (opt.n_samples < 1) throw Error("calibration: --n-samples must be at least 1");
  if (opt.seqlen < 2) throw Error("calibration: --seqlen must be at least 2");
  std::string text;
  for (const std::string& f : opt.files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw Error(f + ": cannot read the calibration file: " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    if (ss.str().empty()) throw Error(f + ": the calibration file is empty");
    if (!text.empty()) text += "\n\n";
    text += ss.str();
  }
  const bool bos = tok.bos_id() >= 0 && tok.add_bos();
  const int64_t chunk = bos ? opt.seqlen - 1 : opt.seqlen;
  const std::vector<int32_t> stream = tok.encode(text, /*add_special=*/false);
  CalibWindows w;
  w.stream_tokens = int64_t(stream.size());
  w.stream_chunks = w.stream_tokens / chunk;
  if (w.stream_chunks < opt.n_samples)
    throw Error("calibration text too short: " + std::to_string(w.stream_tokens) + " tokens give " +
                std::to_string(w.stream_chunks) + " windows of " + std::to_string(opt.seqlen) +
                " tokens, but --n-samples is " + std::to_string(opt.n_samples) +
                " (add text, or lower --n-samples / --seqlen)");
  std::vector<int64_t> order(size_t(w.stream_chunks));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(opt.seed);
  for (int64_t i = 0; i < opt.n_samples; ++i) {  // partial Fisher-Yates
    std::uniform_int_distribution<int64_t> pick(i, w.stream_chunks - 1);
    std::swap(order[size_t(i)], order[size_t(pick(rng))]);
  }
  w.chunk_index.assign(order.begin(), order.begin() + opt.n_samples);
  std::sort(w.chunk_index.begin(), w.chunk_index.end());
  w.n_samples = opt.n_samples;
  w.seqlen = opt.seqlen;
  w.ids.reserve(size_t(opt.n_samples * opt.seqlen));
  for (int64_t c : w.chunk_index) {
    if (bos) w.ids.push_back(tok.bos_id());
    w.ids.insert(w.ids.end(), stream.begin() + c * chunk, stream.begin() + (c + 1) * chunk);
  }
  return w;
}

}  // namespace awq
