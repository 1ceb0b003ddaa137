// Safetensors reading: one mmapped file, validated in full before any tensor is handed out.
// Format: u64 little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data section; offsets are relative to the start of the data section.
//
// Alignment: TensorView::data points straight into the mapping at 8 + N + begin. Files we
// write (and those from the HF `safetensors` library) pad N to a multiple of 8, but the
// format does not require it, and begin need not be a multiple of the element size. So
// TensorView::data may be misaligned for its dtype: consumers must read elements with
// std::memcpy (or copy/convert the tensor into their own aligned buffer), never by casting
// the pointer to `const float*` / `const uint16_t*` and dereferencing it.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace awq {

class SafetensorsFile {
 public:
  // Maps and validates `path`; throws awq::Error naming the file (and tensor) on any defect:
  // header length past the end of the file, invalid JSON, unknown dtype, bad shape,
  // data_offsets outside the data section or overlapping, byte length != numel * dtype size.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::vector<TensorView>& tensors() const { return tensors_; }  // in offset order
  const TensorView* find(const std::string& name) const;                // nullptr if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // MappedFile::release_pages of this file's mapping (false: the range is not in it).
  bool release_pages(const void* p, size_t n) const { return file_->release_pages(p, n); }

 private:
  std::unique_ptr<MappedFile> file_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace awq
