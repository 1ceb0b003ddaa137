// Writing safetensors files atomically: the bytes go to PATH.tmp.XXXXXX in the same folder,
// are fsynced, then renamed over PATH (and the folder fsynced), so a crash or an error
// leaves either the old file or the complete new one, never half of one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace awq {

// A file written piece by piece under PATH.tmp.XXXXXX (same folder) and renamed over PATH by
// commit() after an fsync; destroyed before commit(), it removes the temp file. For outputs
// too large to hold in memory (streamed safetensors shards, GGUF files).
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t n);
  void commit();
  uint64_t bytes_written() const { return written_; }
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const std::string& what);
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
  uint64_t written_ = 0;
};

// The name, dtype and shape of a tensor whose bytes are produced later (streamed writes).
struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
};

// The safetensors header of tensors of these specs, in this order: the 8-byte little-endian
// length, then the JSON (data_offsets packed in order) padded with spaces to a multiple of 8.
// Validates names (unique, not "__metadata__") and shapes; awq::Error naming `path` otherwise.
std::string safetensors_header(const std::string& path, const std::vector<TensorSpec>& tensors,
                               const std::map<std::string, std::string>& metadata);

// fill(tensor index, byte offset inside the tensor, dst, n): writes bytes [offset, offset+n)
// of that tensor into dst.
using TensorFill = std::function<void(size_t index, size_t offset, uint8_t* dst, size_t n)>;

// As write_safetensors, but the data comes from `fill`, asked for chunks of at most
// chunk_bytes, so a file far larger than memory can be written. Atomic like the other.
void write_safetensors_streamed(const std::string& path, const std::vector<TensorSpec>& tensors,
                                const std::map<std::string, std::string>& metadata, const TensorFill& fill,
                                size_t chunk_bytes = size_t(64) << 20);

// Tensors are written in the given order, 8-byte aligned data (header padded with spaces).
// Each view's nbytes must equal numel * dtype size (checked; awq::Error otherwise).
void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename).
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace awq
