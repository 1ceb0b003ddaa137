// Reading GGUF v3 files (io/gguf_format.h): the metadata and the tensor table, with every
// length, type and offset checked against the file size; tensor data stays memory-mapped.
// Used by the tests to check what the writer and exporter wrote, and by tools that inspect
// an exported file.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "io/gguf_format.h"

namespace awq::gguf {

struct Value {
  ValueType type = ValueType::U32;
  ValueType elem_type = ValueType::U32;  // arrays only
  nlohmann::json v;  // number, bool, string, or array of those
};

struct TensorInfo {
  std::string name;
  TensorType type;
  std::vector<int64_t> shape;  // row-major (ne reversed)
  uint64_t offset = 0;         // from the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;
};

class Reader {
 public:
  // Throws awq::Error naming the path and what is wrong (bad magic, version, truncation,
  // an unknown value or tensor type, a misaligned or out-of-file tensor).
  explicit Reader(const std::string& path);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::vector<std::string>& keys() const { return key_order_; }  // file order
  bool has(const std::string& key) const { return kv_.count(key) != 0; }
  const Value& get(const std::string& key) const;  // awq::Error when absent
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo& tensor(const std::string& name) const;  // awq::Error when absent

 private:
  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0, alignment_ = kDefaultAlignment;
  std::vector<std::string> key_order_;
  std::map<std::string, Value> kv_;
  std::vector<TensorInfo> tensors_;
};

}  // namespace awq::gguf
