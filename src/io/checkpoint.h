// A Hugging Face checkpoint folder: model.safetensors, or shards listed in
// model.safetensors.index.json ({"weight_map": {tensor: shard file}}). Every shard is mapped
// and validated when the folder is opened; tensors are looked up by name.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/safetensors.h"

namespace awq {

class Checkpoint {
 public:
  // dir: a folder holding model.safetensors or model.safetensors.index.json (also accepted:
  // the path of a single .safetensors file). Throws awq::Error naming the missing/bad file;
  // an index whose weight_map names a tensor its shard does not hold is an error too.
  explicit Checkpoint(const std::string& dir);

  // The checkpoint folder (where config.json lives); for a single-file path, that file's folder.
  const std::string& dir() const { return dir_; }
  bool has(const std::string& name) const;
  const TensorView* find(const std::string& name) const;  // nullptr if absent
  // Throws "DIR: tensor 'NAME' is missing" when absent.
  const TensorView& get(const std::string& name) const;
  // As get(), and also checks the shape: "DIR: tensor 'NAME' has shape [a, b], expected [c, d]".
  const TensorView& get(const std::string& name, const std::vector<int64_t>& shape) const;
  std::vector<std::string> names() const;  // sorted
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  // Drops the resident pages of [p, p + n) if the range lies inside one of the mapped files
  // (MappedFile::release_pages), so a reader done with a tensor can stop it counting in its
  // RSS; a range elsewhere (an owned aligned copy) is left alone. Returns whether it did.
  bool release_pages(const void* p, size_t n) const;

 private:
  std::string dir_;    // the folder (for a single-file path: the file's folder)
  std::string label_;  // what error messages name: the folder, or the single file's path
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, const TensorView*> by_name_;
};

}  // namespace awq
