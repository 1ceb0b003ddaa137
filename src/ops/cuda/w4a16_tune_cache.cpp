// The measured picks saved between processes (w4a16_tune_cache.h).
#include "ops/cuda/w4a16_tune_cache.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

namespace awq::cuda {

namespace fs = std::filesystem;

bool operator==(const W4A16CachedPick& a, const W4A16CachedPick& b) {
  return a.small == b.small && a.n == b.n && a.k == b.k && a.group == b.group && a.bucket == b.bucket &&
         a.config == b.config && a.splits == b.splits && a.variant == b.variant;
}

std::string w4a16_tune_cache_path(const char* value, const char* xdg_cache_home, const char* home) {
  if (value && *value) return std::strcmp(value, "0") == 0 ? "" : value;
  if (xdg_cache_home && *xdg_cache_home) return std::string(xdg_cache_home) + "/awq/w4a16-picks.tsv";
  if (home && *home) return std::string(home) + "/.cache/awq/w4a16-picks.tsv";
  return "";
}

std::string w4a16_tune_cache_path_from_env() {
  return w4a16_tune_cache_path(std::getenv("AWQ_W4A16_TUNE_CACHE"), std::getenv("XDG_CACHE_HOME"),
                               std::getenv("HOME"));
}

namespace {

std::string clean_key(std::string key) {
  for (char& c : key)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return key;
}

// The key of a line (the text before its first tab) and the rest.
bool split_key(const std::string& line, std::string* key, std::string* rest) {
  const size_t tab = line.find('\t');
  if (tab == std::string::npos) return false;
  *key = line.substr(0, tab);
  *rest = line.substr(tab + 1);
  return true;
}

bool same_slot(const W4A16CachedPick& a, const W4A16CachedPick& b) {
  return a.small == b.small && a.n == b.n && a.k == b.k && a.group == b.group && a.bucket == b.bucket;
}

}  // namespace

std::string w4a16_cache_line(const std::string& key, const W4A16CachedPick& p) {
  std::ostringstream o;
  o << clean_key(key) << '\t' << (p.small ? "small" : "tiled") << '\t' << p.n << '\t' << p.k << '\t' << p.group << '\t'
    << p.bucket << '\t' << p.config << '\t' << p.splits << '\t' << p.variant;
  return o.str();
}

bool w4a16_parse_cache_line(const std::string& line, const std::string& key, W4A16CachedPick* p) {
  std::string k, rest;
  if (line.empty() || line[0] == '#' || !split_key(line, &k, &rest) || k != clean_key(key)) return false;
  std::istringstream in(rest);
  std::string kind;
  W4A16CachedPick q;
  if (!std::getline(in, kind, '\t') || (kind != "tiled" && kind != "small")) return false;
  q.small = kind == "small";
  if (!(in >> q.n >> q.k >> q.group >> q.bucket >> q.config >> q.splits >> q.variant)) return false;
  std::string trailing;
  if (in >> trailing) return false;
  // Plausible values only; the tuner checks the indices against this build's tables.
  if (q.n <= 0 || q.k <= 0 || q.group < 0 || q.bucket <= 0 || q.splits < 0 || q.splits > 8) return false;
  *p = q;
  return true;
}

std::vector<W4A16CachedPick> w4a16_cache_read(const std::string& path, const std::string& key) {
  std::vector<W4A16CachedPick> out;
  std::ifstream in(path);
  W4A16CachedPick p;
  for (std::string line; std::getline(in, line);)
    if (w4a16_parse_cache_line(line, key, &p)) out.push_back(p);
  return out;
}

bool w4a16_cache_write(const std::string& path, const std::string& key, const std::vector<W4A16CachedPick>& picks,
                       std::string* why) {
  // One writer at a time in this process (its temporary file is named by the process); two
  // processes write their own temporary files and the last rename wins (the other's new lines
  // are then timed again by a later load).
  static std::mutex writing;
  const std::lock_guard<std::mutex> lock(writing);
  std::vector<std::string> kept;
  {
    std::ifstream in(path);
    W4A16CachedPick p;
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      bool replaced = false;
      if (w4a16_parse_cache_line(line, key, &p))
        for (const W4A16CachedPick& q : picks) replaced = replaced || same_slot(p, q);
      if (!replaced) kept.push_back(line);
    }
  }
  std::error_code ec;
  const fs::path file(path);
  if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
  if (ec) {
    *why = "cannot create " + file.parent_path().string() + ": " + ec.message();
    return false;
  }
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) {
      *why = "cannot write " + tmp + ": " + std::strerror(errno);
      return false;
    }
    if (kept.empty() || kept[0][0] != '#')
      out << "# awq.cpp: measured W4A16 kernel picks (AWQ_W4A16_TUNE_CACHE; docs/gpu.md). Delete to retime.\n";
    for (const std::string& line : kept) out << line << '\n';
    for (const W4A16CachedPick& q : picks) out << w4a16_cache_line(key, q) << '\n';
    out.flush();
    if (!out) {
      *why = "cannot write " + tmp + ": " + std::strerror(errno);
      out.close();
      fs::remove(tmp, ec);
      return false;
    }
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    *why = "cannot replace " + path + ": " + ec.message();
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

}  // namespace awq::cuda
