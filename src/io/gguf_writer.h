// Writing GGUF v3 files (io/gguf_format.h): metadata key/values and tensor descriptions are
// collected first, then write() streams the header and asks a callback for each tensor's
// rows, so a file far larger than memory can be written. Atomic: PATH.tmp.XXXXXX, fsync,
// rename (io/safetensors_writer.h AtomicFileWriter).
#pragma once
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "io/gguf_format.h"

namespace awq::gguf {

class Writer {
 public:
  // alignment: general.alignment, written as the first key (a power of two).
  explicit Writer(uint32_t alignment = kDefaultAlignment);

  // Each key may be added once (awq::Error otherwise).
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);
  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  void add_f32_array(const std::string& key, const std::vector<float>& v);
  void add_i32_array(const std::string& key, const std::vector<int32_t>& v);

  // shape: row-major, outermost first (as safetensors), written reversed as ggml's ne. The
  // innermost dimension must be a multiple of the type's block size. Returns the index.
  size_t add_tensor(const std::string& name, TensorType type, const std::vector<int64_t>& shape);

  struct Tensor {
    std::string name;
    TensorType type;
    std::vector<int64_t> shape;  // row-major
    int64_t rows() const;        // product of all but the innermost dimension
    uint64_t row_bytes() const;  // innermost dimension encoded in `type`
    uint64_t nbytes() const { return uint64_t(rows()) * row_bytes(); }
  };
  const std::vector<Tensor>& tensors() const { return tensors_; }

  // fill(tensor index, first row, end row, dst): encodes rows [r0, r1) of that tensor into
  // dst ((r1 - r0) * row_bytes bytes). Called with at most chunk_bytes per call (at least
  // one row), tensors in order. progress(bytes done, bytes total) after each call.
  using Fill = std::function<void(size_t index, int64_t r0, int64_t r1, uint8_t* dst)>;
  void write(const std::string& path, const Fill& fill,
             const std::function<void(uint64_t, uint64_t)>& progress = nullptr,
             uint64_t chunk_bytes = uint64_t(32) << 20) const;

 private:
  void key(const std::string& k, ValueType t);
  uint32_t alignment_;
  std::string kv_;  // serialized key/value pairs
  uint64_t n_kv_ = 0;
  std::set<std::string> keys_, names_;
  std::vector<Tensor> tensors_;
};

}  // namespace awq::gguf
