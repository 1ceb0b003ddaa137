// A safetensors file written as its tensors are produced: every tensor's name, dtype and shape
// is fixed up front (the header goes first), then each tensor's bytes are appended in that
// order, in one piece or several, as soon as they exist; the caller frees them right after.
// So a writer of a large checkpoint (awq quantize) holds one tensor at a time, not the file.
//
// Written through AtomicFileWriter: the file appears under its name only at commit(); an
// error or an exception (Ctrl-C) before that removes the temp file. A write that does not
// match the next tensor of the header (name, dtype, shape, or more bytes than it has), or a
// commit() before every tensor is complete, throws awq::Error and the file is never made:
// the header and the data could not disagree in a committed file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/safetensors_writer.h"

namespace awq {

class SafetensorsStreamWriter {
 public:
  // Validates the specs (as write_safetensors does) and writes the header.
  SafetensorsStreamWriter(const std::string& path, std::vector<TensorSpec> specs,
                          const std::map<std::string, std::string>& metadata);

  // Appends n bytes of tensor `name`, which must be the next incomplete tensor of the header
  // with this dtype and shape; n may be part of it (the next part follows in the next call).
  // Tensors of zero bytes are complete from the start and never written.
  void write(const std::string& name, DType dtype, const std::vector<int64_t>& shape, const void* data,
             size_t n);

  // Checks that every tensor got all its bytes, then fsyncs and renames into place.
  void commit();

  size_t tensors_done() const { return next_; }
  uint64_t data_bytes() const { return data_bytes_; }  // tensor bytes written so far

 private:
  void skip_empty();
  [[noreturn]] void mismatch(const std::string& what) const;

  AtomicFileWriter file_;
  std::vector<TensorSpec> specs_;
  size_t next_ = 0;         // index of the first incomplete tensor
  size_t next_done_ = 0;    // bytes of specs_[next_] written so far
  uint64_t data_bytes_ = 0;
  bool failed_ = false;     // a mismatch was found: commit() refuses
};

}  // namespace awq
