// Measured picks of the W4A16 kernels: for each layer shape a model uploads, every candidate tile
// and K split of the tiled GEMM (m = 17..512; the wgmma tiles on sm_90a devices, the mma.sync
// tiles elsewhere), and every register-streaming variant and K-slice configuration and split
// against the dispatch's own choice (m = 1 and m = 2..16), is timed once per bucket of token counts on this GPU, and the fastest is
// what launch_w4a16 runs for that bucket from then on; the dispatch's rules (w4a16_pick_tiled,
// w4a16_default_kslice, w4a16_default_variant) stay the fallback and the tie-break. Why: the rules
// were fitted on a few shapes (the 7B's, then some of Llama-3-8B's, Qwen2.5-7B's, a 13B's and a
// 70B's) and were 10-45 % off the best tile on shapes and token counts they had not seen, and the
// K-slice rules, fitted on the 7B, 10-42 % off on Llama-3-8B's and Qwen2.5-7B's layers at 8-16
// tokens (docs/results/gpu.md, sessions 28-29); timing the ~100 candidates of a shape takes a
// fraction of a second. Internal to src/ops/cuda: the model calls w4a16_tune_linear (w4a16.h).
// The picks live for the process: the same (shape, bucket) always runs the same kernel after
// tuning, so results are deterministic within a process (eager and graph, every PDL mode). They
// are also saved in a cache file (AWQ_W4A16_TUNE_CACHE, w4a16_tune_cache.h) that later processes
// on the same device read instead of timing: without it two processes could pick differently
// between tiles whose times tie (last-bit differences). AWQ_W4A16_TUNE=0 turns tuning off (the
// rules' picks, the same in every process).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ops/cuda/w4a16_kernels.h"

namespace awq::cuda {

// Token buckets of the tiled GEMM, each timed at its upper end; 0: m is outside. With the sm_90a
// wgmma tiles (wgmma = true), buckets of 64: those tiles hold 64, 128 or 256 tokens, so a
// configuration's grid and work are the same for every m of (64 (j - 1), 64 j]. Tuned: m = 33..512,
// and 17..32 with the first bucket where those run the 64-token wgmma tiles
// (AWQ_W4A16_WGMMA_FROM_17, the default); below, the K-slice and register-streaming kernels; above,
// the 256 x 128 tile. Elsewhere (wgmma = false: the mma.sync tiles of w4a16_tiled.cu, 16 to 128
// tokens a tile): buckets of 32 over m = 65..256 and of 64 up to 512; m = 17..64 keep the rules.
// Why not below 65 (H200 with AWQ_W4A16_WGMMA=0, session 31, docs/results/gpu.md): picks timed
// there made Llama-3-8B's decode 7-9 % slower at batch 32 and 64 (the 7B's 5-7 % faster), while
// from 65 tokens on they gave +7 % (Llama-3-8B) and +15 % (Qwen2.5-7B) at batch 128 and 1.1-1.2x
// on the 7B's layers at 192 tokens.
constexpr int64_t kW4A16TuneMinTokens = 17, kW4A16TuneMinTokensMma = 65, kW4A16TuneMaxTokens = 512;
int64_t w4a16_tune_bucket(int64_t m, bool wgmma = true);
// The buckets' upper ends up to min(m_max, kW4A16TuneMaxTokens), in order.
std::vector<int64_t> w4a16_tune_buckets(int64_t m_max, bool wgmma);

// Small batches (decode at 1..16 sequences): one bucket for m = 1 and buckets of 4 tokens over
// m = 2..16 (the K-slice kernels' token tiles hold 8 tokens; their shared x slice grows with m),
// each timed at its upper end. 0: m is outside. Their candidates: the dispatch's own choice, every
// register-streaming variant (w4a16_variant) and every K-slice configuration at 1, 2, 3, 4, 6 and
// 8 splits that fits (w4a16_kslice_fits).
constexpr int64_t kW4A16TuneSmallMax = 16;
int64_t w4a16_tune_small_bucket(int64_t m);

// A recorded small-batch pick: a K-slice configuration (ks.config >= 0) or a register-streaming
// variant (variant >= 0); neither where none is recorded or the dispatch's own choice was kept.
struct W4A16SmallPick {
  W4A16KSliceChoice ks;
  int variant = -1;
};

// The candidates of every tiled bucket for k inputs: every wgmma configuration the context allows
// (the TMA ones with ctx.tma, stream-K ones with ctx.stream_k, split-K-through-L2 ones with
// ctx.l2_split) at 1, 2, 3, 4, 6 and 8 K splits (the split-K-through-L2 ones at 2..8: unsplit,
// each is its cluster twin) where splits are available and each split keeps >= 4 chunks of 64
// inputs (a stream-K configuration unsplit only). Without ctx.wgmma: every mma.sync configuration
// (w4a16_tiled.cu) at 1, 2 and 4 K splits (the rules' splits), the same way.
std::vector<W4A16TiledChoice> w4a16_tune_candidates(int64_t k, const W4A16PickContext& ctx);

struct W4A16Timed {
  W4A16TiledChoice choice;
  double us;            // time of one call (the fastest round)
  double spread = 0.0;  // the slowest round over the fastest, minus 1
};
// The pick from the candidates' times: the fastest, unless the rules' pick `rule` (if timed) is
// within `margin` of it (e.g. 0.03: the fastest must be 3 % faster to replace the rule's pick;
// timing noise then does not move picks the rules already got right). {-1, 0} if none was timed.
W4A16TiledChoice w4a16_tune_select(W4A16TiledChoice rule, const std::vector<W4A16Timed>& timed, double margin);

// Whether a bucket's timing was steady enough to save its pick in the cache file: the pick's and
// the rules' pick's rounds (where timed) within `max_spread` of their fastest. A GPU shared with
// another process at the time gives rounds far apart; such a pick still runs in this process, but
// a later one times the bucket again rather than keep it.
bool w4a16_tune_steady(W4A16TiledChoice pick, W4A16TiledChoice rule, const std::vector<W4A16Timed>& timed,
                       double max_spread);

// What one shape's tuning did (for the caller's log line).
struct W4A16TuneReport {
  int buckets = 0;        // buckets timed now (0: already tuned, read from the cache, or not tunable here)
  int cached = 0;         // buckets whose picks were read from the cache file (w4a16_tune_cache.h)
  int changed = 0;        // of the timed and the cached, those whose pick differs from the rules'
  double seconds = 0.0;   // wall time spent
  std::string why_not;    // non-empty where nothing was tuned: why
  std::string cache;      // the cache file used ("" where none: AWQ_W4A16_TUNE_CACHE=0, or no home)
  std::string cache_error;  // non-empty where the new picks could not be saved there: why
  int unsteady = 0;         // timed buckets not saved there: their rounds were too far apart
};
// Times the candidates of (n, k, group) for every bucket (the small ones too; the tiled ones of this
// GPU's scheme, w4a16_tune_bucket) up to m_max (capped at kW4A16TuneMaxTokens) and records the picks, unless tuned already in this process or found in the
// cache file (AWQ_W4A16_TUNE_CACHE, w4a16_tune_cache.h; the new picks are added to it). weights: uploaded weights of
// that shape (w4a16.h), e.g. every layer's: the timed calls cycle through them, so that as in a
// model's step each call reads its weights from memory, not from L2 (one weight read over and
// over would sit in L2 and favour other tiles); x: [m_max, k] (its first min(m_max,
// kW4A16TuneMaxTokens) rows overwritten with pseudo-random values, fill_random.h, where anything is
// timed) and y: [m_max, n] (overwritten) device scratch. Must not run while s is being captured into a graph
// (returns with why_not set). Synchronizes s.
struct W4A16Codes {
  const uint4* codes;
  const uint2* params;
};
W4A16TuneReport w4a16_tune(const std::vector<W4A16Codes>& weights, int64_t n, int64_t k, int group, int64_t m_max,
                           __half* x, __half* y, cudaStream_t s);
// The recorded pick for m tokens of (n, k, group), or {-1, 0} where none is.
W4A16TiledChoice w4a16_tuned_pick(int64_t m, int64_t n, int64_t k, int group);
// The recorded small-batch pick for m tokens of (n, k) (any group: a model has one).
W4A16SmallPick w4a16_tuned_small(int64_t m, int64_t n, int64_t k);
// Forgets every recorded pick (tests).
void w4a16_tune_forget();

// AWQ_W4A16_TUNE: "1" or unset = the CUDA model tunes its layer shapes at load (above); "0" = it
// does not (the rules' picks). Anything else: awq::Error. parse_ parses a value, _from_env reads once.
bool parse_w4a16_tune(const char* value);
bool w4a16_tune_from_env();

}  // namespace awq::cuda
