// The measured picks of the W4A16 kernels (w4a16_tune.h) saved between processes: a text file
// holding the picks of every device it has seen, one per line, so that a model's later loads on
// the same machine skip the timing (~1.3 s for a 7B) and run the same kernels as the first (two
// timings may pick different tiles where they tie, and different tiles sum in a different order:
// last-bit differences in the logits). TensorRT's timing cache and Triton's autotune cache do the
// same. A line is used only where every thing the pick depends on matches its key (w4a16_tune.cpp
// builds it: the device's name, compute capability and SMs, the driver and runtime versions, the
// PDL mode the small batches were timed under, and a signature of this build's kernel tables and
// dispatch switches); lines of other keys are kept as they are, and a line that does not parse is
// skipped, never an error. The cache is only ever a speed-up: a missing, unreadable or unwritable
// file means the shapes are timed as without it.
//
// File format (tab-separated, '#' starts a comment line):
//   key  tiled  n  k  group  bucket  config  splits  -1
//   key  small  n  k  group  bucket  kslice_config  kslice_splits  variant
// (small: group is 0, kslice_config -1 and variant -1 where the dispatch's own choice was kept).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace awq::cuda {

// One recorded pick (w4a16_tune.h): a tiled bucket (config, splits: a W4A16TiledChoice) or a small
// one (config, splits: a W4A16KSliceChoice; variant: a register-streaming variant).
struct W4A16CachedPick {
  bool small = false;
  int64_t n = 0, k = 0;
  int group = 0;
  int64_t bucket = 0;
  int config = -1, splits = 0, variant = -1;
};
bool operator==(const W4A16CachedPick& a, const W4A16CachedPick& b);

// The cache file from AWQ_W4A16_TUNE_CACHE's value and the environment's XDG_CACHE_HOME and HOME
// (each may be null): null or "" = $XDG_CACHE_HOME/awq/w4a16-picks.tsv, else
// $HOME/.cache/awq/w4a16-picks.tsv; "0" = no cache (returns ""); anything else = that path.
// "" also where neither XDG_CACHE_HOME nor HOME is set.
std::string w4a16_tune_cache_path(const char* value, const char* xdg_cache_home, const char* home);
// The same from the environment, read at each call (a test may point it elsewhere).
std::string w4a16_tune_cache_path_from_env();

// One line of the file for `key` (no tabs or newlines in it: they are replaced by spaces), and the
// pick of a line whose key is `key` (false for other keys, comments and lines that do not parse).
std::string w4a16_cache_line(const std::string& key, const W4A16CachedPick& p);
bool w4a16_parse_cache_line(const std::string& line, const std::string& key, W4A16CachedPick* p);

// The picks of `key` in the file at `path` (none where it does not exist or cannot be read).
std::vector<W4A16CachedPick> w4a16_cache_read(const std::string& path, const std::string& key);
// Adds `picks` under `key` to the file at `path` (creating it and its folder), replacing the lines
// of the same key and bucket and keeping every other line; written to a temporary file then
// renamed over the old one, so that a reader never sees half a file. False with *why set where it
// could not be written (the old file is then untouched).
bool w4a16_cache_write(const std::string& path, const std::string& key, const std::vector<W4A16CachedPick>& picks,
                       std::string* why);

}  // namespace awq::cuda
