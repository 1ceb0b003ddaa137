#include "io/gguf_writer.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "io/safetensors_writer.h"

namespace awq::gguf {
namespace {

template <class T>
void put(std::string& out, T v) {  // little-endian hosts only (x86-64, aarch64)
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}
void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}
uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

}  // namespace

Writer::Writer(uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw Error("gguf: alignment " + std::to_string(alignment) + " is not a power of two");
  add_u32("general.alignment", alignment);
}

void Writer::key(const std::string& k, ValueType t) {
  if (k.empty()) throw Error("gguf: empty metadata key");
  if (!keys_.insert(k).second) throw Error("gguf: metadata key '" + k + "' added twice");
  put_string(kv_, k);
  put<uint32_t>(kv_, uint32_t(t));
  ++n_kv_;
}

void Writer::add_u32(const std::string& k, uint32_t v) { key(k, ValueType::U32), put(kv_, v); }
void Writer::add_i32(const std::string& k, int32_t v) { key(k, ValueType::I32), put(kv_, v); }
void Writer::add_f32(const std::string& k, float v) { key(k, ValueType::F32), put(kv_, v); }
void Writer::add_bool(const std::string& k, bool v) { key(k, ValueType::BOOL), put<uint8_t>(kv_, v ? 1 : 0); }
void Writer::add_string(const std::string& k, const std::string& v) { key(k, ValueType::STRING), put_string(kv_, v); }

void Writer::add_string_array(const std::string& k, const std::vector<std::string>& v) {
  key(k, ValueType::ARRAY);
  put<uint32_t>(kv_, uint32_t(ValueType::STRING));
  put<uint64_t>(kv_, v.size());
  for (const std::string& s : v) put_string(kv_, s);
}
void Writer::add_f32_array(const std::string& k, const std::vector<float>& v) {
  key(k, ValueType::ARRAY);
  put<uint32_t>(kv_, uint32_t(ValueType::F32));
  put<uint64_t>(kv_, v.size());
  for (float x : v) put(kv_, x);
}
void Writer::add_i32_array(const std::string& k, const std::vector<int32_t>& v) {
  key(k, ValueType::ARRAY);
  put<uint32_t>(kv_, uint32_t(ValueType::I32));
  put<uint64_t>(kv_, v.size());
  for (int32_t x : v) put(kv_, x);
}

int64_t Writer::Tensor::rows() const {
  int64_t r = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) r *= shape[i];
  return r;
}
uint64_t Writer::Tensor::row_bytes() const {
  return uint64_t(shape.back() / block_elems(type) * block_bytes(type));
}

size_t Writer::add_tensor(const std::string& name, TensorType type, const std::vector<int64_t>& shape) {
  const std::string where = "gguf: tensor '" + name + "'";
  if (!names_.insert(name).second) throw Error(where + " added twice");
  if (!is_known(type)) throw Error(where + ": unsupported tensor type " + type_name(type));
  if (shape.empty() || shape.size() > 4) throw Error(where + ": GGUF tensors have 1 to 4 dimensions");
  for (int64_t d : shape)
    if (d <= 0) throw Error(where + ": every dimension must be positive");
  if (shape.back() % block_elems(type) != 0)
    throw Error(where + ": the innermost dimension " + std::to_string(shape.back()) + " is not a multiple of " +
                type_name(type) + "'s block of " + std::to_string(block_elems(type)) +
                "; choose --type f16 for this model");
  tensors_.push_back(Tensor{name, type, shape});
  return tensors_.size() - 1;
}

void Writer::write(const std::string& path, const Fill& fill, const std::function<void(uint64_t, uint64_t)>& progress,
                   uint64_t chunk_bytes) const {
  std::string head;
  put<uint32_t>(head, kMagic);
  put<uint32_t>(head, kVersion);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, n_kv_);
  head += kv_;
  uint64_t offset = 0, total = 0;
  for (const Tensor& t : tensors_) {
    put_string(head, t.name);
    put<uint32_t>(head, uint32_t(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put<uint64_t>(head, uint64_t(*it));
    put<uint32_t>(head, uint32_t(t.type));
    put<uint64_t>(head, offset);
    offset = align_up(offset + t.nbytes(), alignment_);
    total += t.nbytes();
  }
  head.append(align_up(head.size(), alignment_) - head.size(), '\0');

  AtomicFileWriter f(path);
  f.write(head.data(), head.size());
  std::vector<uint8_t> buf;
  const std::vector<uint8_t> zeros(alignment_, 0);
  uint64_t done = 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    const int64_t rows = t.rows();
    const int64_t step = std::max<int64_t>(1, int64_t(chunk_bytes / t.row_bytes()));
    for (int64_t r0 = 0; r0 < rows; r0 += step) {
      const int64_t r1 = std::min(rows, r0 + step);
      buf.assign(size_t(r1 - r0) * t.row_bytes(), 0);
      fill(i, r0, r1, buf.data());
      f.write(buf.data(), buf.size());
      done += buf.size();
      if (progress) progress(done, total);
    }
    const uint64_t pad = align_up(t.nbytes(), alignment_) - t.nbytes();
    if (i + 1 < tensors_.size() && pad) f.write(zeros.data(), pad);
  }
  f.commit();
}

}  // namespace awq::gguf
