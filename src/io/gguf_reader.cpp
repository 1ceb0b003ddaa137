#include "io/gguf_reader.h"

#include <cstring>

#include "core/error.h"

namespace awq::gguf {
namespace {

class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n, const std::string& path) : p_(p), n_(n), path_(path) {}
  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(const char* what) {
    const uint64_t len = read<uint64_t>(what);
    need(len, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }
  size_t pos() const { return pos_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(path_ + ": " + what + " (at byte " + std::to_string(pos_) + ")");
  }

 private:
  void need(uint64_t k, const char* what) const {
    if (k > n_ - pos_) fail(std::string("truncated GGUF file: ") + what + " runs past the end");
  }
  const uint8_t* p_;
  size_t n_, pos_ = 0;
  const std::string& path_;
};

nlohmann::json scalar(Cursor& c, ValueType t) {
  switch (t) {
    case ValueType::U8: return c.read<uint8_t>("value");
    case ValueType::I8: return c.read<int8_t>("value");
    case ValueType::U16: return c.read<uint16_t>("value");
    case ValueType::I16: return c.read<int16_t>("value");
    case ValueType::U32: return c.read<uint32_t>("value");
    case ValueType::I32: return c.read<int32_t>("value");
    case ValueType::F32: return c.read<float>("value");
    case ValueType::BOOL: return c.read<uint8_t>("value") != 0;
    case ValueType::STRING: return c.string("string value");
    case ValueType::U64: return c.read<uint64_t>("value");
    case ValueType::I64: return c.read<int64_t>("value");
    case ValueType::F64: return c.read<double>("value");
    case ValueType::ARRAY: break;
  }
  c.fail("unknown metadata value type " + std::to_string(uint32_t(t)));
}

}  // namespace

Reader::Reader(const std::string& path) : file_(std::make_unique<MappedFile>(path)) {
  Cursor c(file_->data(), file_->size(), path);
  if (c.read<uint32_t>("magic") != kMagic) c.fail("not a GGUF file (the magic is not \"GGUF\")");
  version_ = c.read<uint32_t>("version");
  if (version_ != 3) c.fail("GGUF version " + std::to_string(version_) + " is not supported (only 3)");
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_tensors > file_->size() || n_kv > file_->size()) c.fail("tensor or metadata count larger than the file");
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = c.string("metadata key");
    Value v;
    v.type = ValueType(c.read<uint32_t>("value type"));
    if (v.type == ValueType::ARRAY) {
      v.elem_type = ValueType(c.read<uint32_t>("array type"));
      const uint64_t n = c.read<uint64_t>("array length");
      if (n > file_->size()) c.fail("array '" + key + "' longer than the file");
      if (v.elem_type == ValueType::ARRAY) c.fail("nested arrays ('" + key + "') are not supported");
      v.v = nlohmann::json::array();
      for (uint64_t j = 0; j < n; ++j) v.v.push_back(scalar(c, v.elem_type));
    } else {
      v.v = scalar(c, v.type);
    }
    if (!kv_.emplace(key, std::move(v)).second) c.fail("metadata key '" + key + "' appears twice");
    key_order_.push_back(key);
  }
  if (has("general.alignment")) {
    const Value& a = get("general.alignment");
    const uint64_t al = a.v.is_number_unsigned() ? a.v.get<uint64_t>() : 0;
    if (a.type != ValueType::U32 || al == 0 || (al & (al - 1)) != 0) c.fail("general.alignment is not a u32 power of two");
    alignment_ = uint32_t(al);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.name = c.string("tensor name");
    const uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > 4) c.fail("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    t.shape.resize(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) t.shape[n_dims - 1 - d] = int64_t(c.read<uint64_t>("tensor dimension"));
    t.type = TensorType(c.read<uint32_t>("tensor type"));
    if (!is_known(t.type)) c.fail("tensor '" + t.name + "' has a ggml type this reader does not know: " + type_name(t.type));
    t.offset = c.read<uint64_t>("tensor offset");
    if (t.offset % alignment_ != 0) c.fail("tensor '" + t.name + "' offset is not a multiple of the alignment");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d <= 0 || __builtin_mul_overflow(numel, uint64_t(d), &numel)) c.fail("tensor '" + t.name + "' has a bad shape");
    }
    if (uint64_t(t.shape.back()) % uint64_t(block_elems(t.type)) != 0)
      c.fail("tensor '" + t.name + "' innermost dimension is not a multiple of its block size");
    t.nbytes = numel / uint64_t(block_elems(t.type)) * uint64_t(block_bytes(t.type));
    tensors_.push_back(std::move(t));
  }
  const uint64_t data_start = (uint64_t(c.pos()) + alignment_ - 1) / alignment_ * alignment_;
  for (TensorInfo& t : tensors_) {
    if (data_start + t.offset > file_->size() || t.nbytes > file_->size() - data_start - t.offset)
      throw Error(path + ": tensor '" + t.name + "' data runs past the end of the file (truncated?)");
    t.data = file_->data() + data_start + t.offset;
  }
}

const Value& Reader::get(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) throw Error(file_->path() + ": no metadata key '" + key + "'");
  return it->second;
}

const TensorInfo& Reader::tensor(const std::string& name) const {
  for (const TensorInfo& t : tensors_)
    if (t.name == name) return t;
  throw Error(file_->path() + ": no tensor '" + name + "'");
}

}  // namespace awq::gguf
