// Hugging Face checkpoint folders: one model.safetensors, or shards named by
// model.safetensors.index.json. All files are mapped and validated up front.
#include "io/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"

namespace awq {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kSingle = "model.safetensors";
constexpr const char* kIndex = "model.safetensors.index.json";

bool is_regular(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// weight_map of an index file: tensor name -> shard file name (relative to the folder).
std::map<std::string, std::string> read_weight_map(const std::string& index_path) {
  MappedFile f(index_path);
  const char* text = reinterpret_cast<const char*>(f.data());
  json j;
  try {
    j = json::parse(text, text + f.size());
  } catch (const json::exception& e) {
    throw Error(index_path + ": not valid JSON (" + e.what() +
                "); the index is corrupt, re-download it");
  }
  check(j.is_object(), index_path + ": not a JSON object; the index is corrupt");
  auto wm = j.find("weight_map");
  check(wm != j.end() && wm->is_object(),
        index_path + ": missing or non-object field 'weight_map'; the index is corrupt");
  check(!wm->empty(), index_path + ": 'weight_map' is empty; the index is corrupt");
  std::map<std::string, std::string> out;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    check(it.value().is_string() && !it.value().get_ref<const std::string&>().empty(),
          index_path + ": weight_map entry for tensor '" + it.key() +
              "' is not a file name string");
    out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

}  // namespace

Checkpoint::Checkpoint(const std::string& dir) {
  std::error_code ec;
  const fs::path p(dir);
  check(fs::exists(p, ec), dir + ": no such file or directory");
  std::vector<std::string> shard_paths;
  std::map<std::string, std::string> weight_map;  // empty unless sharded
  std::string index_path;

  if (!fs::is_directory(p, ec)) {
    // A single .safetensors file: dir() is its folder, messages name the file.
    label_ = dir;
    dir_ = p.has_parent_path() ? p.parent_path().string() : std::string(".");
    shard_paths.push_back(dir);
  } else {
    label_ = dir_ = dir;
    if (is_regular(p / kSingle)) {  // as transformers: a single file wins over an index
      shard_paths.push_back((p / kSingle).string());
    } else if (is_regular(p / kIndex)) {
      index_path = (p / kIndex).string();
      weight_map = read_weight_map(index_path);
      std::set<std::string> seen;
      for (const auto& [tensor, shard] : weight_map) {
        if (!seen.insert(shard).second) continue;
        const fs::path sp = p / shard;
        check(is_regular(sp), index_path + ": shard '" + shard + "' (holding tensor '" + tensor +
                                  "') is missing: " + sp.string() +
                                  " does not exist; re-download the checkpoint");
        shard_paths.push_back(sp.string());
      }
    } else {
      throw Error(dir + ": no " + kSingle + " or " + kIndex + " found");
    }
  }

  for (const std::string& sp : shard_paths) {
    files_.push_back(std::make_unique<SafetensorsFile>(sp));
    const SafetensorsFile& f = *files_.back();
    for (const TensorView& t : f.tensors()) {
      auto [it, inserted] = by_name_.emplace(t.name, &t);
      if (!inserted) {
        const SafetensorsFile* other = nullptr;
        for (const auto& g : files_)
          if (g->find(t.name) == it->second) other = g.get();
        throw Error(label_ + ": tensor '" + t.name + "' is stored twice, in " +
                    (other ? other->path() : std::string("?")) + " and " + f.path() +
                    "; the checkpoint is corrupt");
      }
    }
  }

  // Every tensor the index promises must be in the shard it names.
  for (const auto& [tensor, shard] : weight_map) {
    const std::string sp = (p / shard).string();
    auto f = std::find_if(files_.begin(), files_.end(),
                          [&](const auto& g) { return g->path() == sp; });
    check(f != files_.end() && (*f)->find(tensor) != nullptr,
          index_path + ": weight_map puts tensor '" + tensor + "' in '" + shard +
              "' but that file does not hold it; the checkpoint is corrupt or incomplete");
  }
}

bool Checkpoint::has(const std::string& name) const { return by_name_.count(name) != 0; }

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TensorView& Checkpoint::get(const std::string& name) const {
  const TensorView* t = find(name);
  check(t != nullptr, label_ + ": tensor '" + name + "' is missing");
  return *t;
}

const TensorView& Checkpoint::get(const std::string& name,
                                  const std::vector<int64_t>& shape) const {
  const TensorView& t = get(name);
  if (t.shape != shape) {
    TensorView want;
    want.shape = shape;
    throw Error(label_ + ": tensor '" + name + "' has shape " + t.shape_str() + ", expected " +
                want.shape_str());
  }
  return t;
}

bool Checkpoint::release_pages(const void* p, size_t n) const {
  for (const auto& f : files_)
    if (f->release_pages(p, n)) return true;
  return false;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& kv : by_name_) out.push_back(kv.first);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace awq
