#include "io/safetensors_stream.h"

#include "core/error.h"

namespace awq {

namespace {
std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}
std::string describe(const std::string& name, DType dt, const std::vector<int64_t>& shape) {
  std::string s = "'";
  s += name;
  s += "' ";
  s += dtype_name(dt);
  s += " ";
  s += shape_str(shape);
  return s;
}
}  // namespace

SafetensorsStreamWriter::SafetensorsStreamWriter(const std::string& path, std::vector<TensorSpec> specs,
                                                 const std::map<std::string, std::string>& metadata)
    : file_(path), specs_(std::move(specs)) {
  const std::string header = safetensors_header(path, specs_, metadata);
  file_.write(header.data(), header.size());
  skip_empty();
}

void SafetensorsStreamWriter::skip_empty() {
  while (next_ < specs_.size() && next_done_ == specs_[next_].nbytes()) ++next_, next_done_ = 0;
}

void SafetensorsStreamWriter::mismatch(const std::string& what) const {
  std::string msg = file_.path();
  msg += ": internal error while streaming the tensors: ";
  msg += what;
  msg += "; the file was not written (please report this as a bug)";
  throw Error(msg);
}

void SafetensorsStreamWriter::write(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                    const void* data, size_t n) {
  if (failed_) mismatch("a write after an earlier mismatch");
  failed_ = true;  // until this write has been checked and done
  const std::string got = describe(name, dtype, shape);
  if (next_ == specs_.size())
    mismatch("tensor " + got + " was produced after the last tensor of the header (" +
             std::to_string(specs_.size()) + " tensors)");
  const TensorSpec& s = specs_[next_];
  const std::string want = describe(s.name, s.dtype, s.shape);
  if (name != s.name || dtype != s.dtype || shape != s.shape) {
    std::string what = "tensor " + got + " was produced where the header has tensor " + std::to_string(next_) +
                       " " + want;
    if (next_done_ > 0)
      what += " (which got only " + std::to_string(next_done_) + " of its " + std::to_string(s.nbytes()) + " bytes)";
    mismatch(what);
  }
  if (n > s.nbytes() - next_done_)
    mismatch("tensor " + got + " was given " + std::to_string(next_done_ + n) + " bytes; the header has " +
             std::to_string(s.nbytes()));
  file_.write(data, n);
  next_done_ += n;
  data_bytes_ += n;
  skip_empty();
  failed_ = false;
}

void SafetensorsStreamWriter::commit() {
  if (failed_) mismatch("commit after a failed write");
  if (next_ < specs_.size()) {
    failed_ = true;
    const TensorSpec& s = specs_[next_];
    mismatch("commit with tensor " + std::to_string(next_) + " " + describe(s.name, s.dtype, s.shape) + " at " +
             std::to_string(next_done_) + " of its " + std::to_string(s.nbytes()) + " bytes and " +
             std::to_string(specs_.size() - next_ - 1) + " tensors after it not written");
  }
  file_.commit();
}

}  // namespace awq
