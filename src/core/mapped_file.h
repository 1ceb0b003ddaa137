// A read-only memory map of a whole file. Checkpoints are mapped, never read into memory,
// so loading costs nothing until a tensor is touched.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace awq {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws awq::Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Whether [p, p + n) lies inside this mapping.
  bool contains(const void* p, size_t n) const;
  // Drops this process's pages of [p, p + n) (widened to whole pages) from its resident set
  // (madvise MADV_DONTNEED): the mapping is read-only, so they are clean page-cache pages
  // that a later read faults back in unchanged; the kernel's page cache keeps them. For
  // callers done with a range (awq quantize after each layer), so that RSS does not grow
  // with the file. Returns false, doing nothing, when the range is not inside the mapping.
  bool release_pages(const void* p, size_t n) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace awq
