// Safetensors writer and the atomic-file mechanism (AtomicFileWriter) it shares with write_file_atomic:
// PATH.tmp.XXXXXX (mkstemp, same folder) -> write all -> fsync -> rename -> fsync folder.
#include "io/safetensors_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors_stream.h"

namespace awq {

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path), tmp_(path + ".tmp.XXXXXX") {
  fd_ = ::mkstemp(tmp_.data());
  if (fd_ < 0) fail("cannot create temp file " + tmp_);
  // mkstemp makes the file 0600; checkpoints are meant to be shared like any output.
  if (::fchmod(fd_, 0644) != 0) fail("cannot chmod " + tmp_);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  written_ += n;
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("cannot write " + tmp_);
    p += w;
    n -= size_t(w);
  }
}

void AtomicFileWriter::commit() {
  if (::fsync(fd_) != 0) fail("cannot fsync " + tmp_);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("cannot close " + tmp_);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("cannot rename " + tmp_ + " to it");
  committed_ = true;
  // Make the rename itself durable. Some filesystems cannot fsync a folder (EINVAL): fine.
  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail("written, but cannot open folder " + dir + " to fsync it");
  const int rc = ::fsync(dfd);
  const int e = errno;
  ::close(dfd);
  if (rc != 0 && e != EINVAL) {
    errno = e;
    fail("written, but cannot fsync folder " + dir);
  }
}

void AtomicFileWriter::fail(const std::string& what) {
  throw Error(path_ + ": " + what + ": " + std::strerror(errno));
}

namespace {

struct Chunk {
  const void* data;
  size_t size;
};

void write_chunks_atomic(const std::string& path, const std::vector<Chunk>& chunks) {
  AtomicFileWriter f(path);
  for (const Chunk& c : chunks) f.write(c.data, c.size);
  f.commit();
}

// Checks the views and returns the header (length-prefix included), padded to 8 bytes.
std::string make_header(const std::string& path, const std::vector<TensorView>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const TensorView& t : tensors) {
    const std::string where = path + ": tensor '" + t.name + "'";
    check(t.name != "__metadata__", where + ": the name is reserved by the format");
    check(names.insert(t.name).second, where + ": the name is used twice; names must be unique");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      check(d >= 0, where + ": shape " + t.shape_str() + " has a negative dimension");
      check(!__builtin_mul_overflow(numel, uint64_t(d), &numel),
            where + ": shape " + t.shape_str() + " overflows 64 bits");
    }
    uint64_t need = 0;
    check(!__builtin_mul_overflow(numel, uint64_t(dtype_size(t.dtype)), &need) &&
              need == t.nbytes,
          where + ": " + dtype_name(t.dtype) + " " + t.shape_str() + " needs " +
              std::to_string(numel * dtype_size(t.dtype)) + " bytes but the view holds " +
              std::to_string(t.nbytes));
    check(t.data != nullptr || t.nbytes == 0, where + ": data is null");
    h[t.name] = {{"dtype", dtype_name(t.dtype)},
                 {"shape", t.shape},
                 {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string json;
  try {
    json = h.dump();
  } catch (const nlohmann::json::exception& e) {  // e.g. a name that is not UTF-8
    throw Error(path + ": cannot encode the header (" + e.what() + ")");
  }
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((uint64_t(json.size()) >> (8 * i)) & 0xff);
  return out + json;
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string header = make_header(path, tensors, metadata);  // validates first
  std::vector<Chunk> chunks{{header.data(), header.size()}};
  for (const TensorView& t : tensors)
    if (t.nbytes) chunks.push_back({t.data, t.nbytes});
  write_chunks_atomic(path, chunks);
}

std::string safetensors_header(const std::string& path, const std::vector<TensorSpec>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  // Views with a placeholder non-null pointer: make_header reads only names, shapes and sizes.
  static const uint8_t placeholder = 0;
  std::vector<TensorView> views;
  views.reserve(tensors.size());
  for (const TensorSpec& t : tensors) views.push_back(TensorView{t.name, t.dtype, t.shape, &placeholder, t.nbytes()});
  return make_header(path, views, metadata);
}

void write_safetensors_streamed(const std::string& path, const std::vector<TensorSpec>& tensors,
                                const std::map<std::string, std::string>& metadata, const TensorFill& fill,
                                size_t chunk_bytes) {
  if (chunk_bytes == 0) chunk_bytes = size_t(64) << 20;
  SafetensorsStreamWriter f(path, tensors, metadata);
  std::vector<uint8_t> buf;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t total = tensors[i].nbytes();
    for (size_t off = 0; off < total; off += chunk_bytes) {
      const size_t n = std::min(chunk_bytes, total - off);
      buf.resize(n);
      fill(i, off, buf.data(), n);
      f.write(tensors[i].name, tensors[i].dtype, tensors[i].shape, buf.data(), n);
    }
  }
  f.commit();
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_chunks_atomic(path, {{bytes.data(), bytes.size()}});
}

}  // namespace awq
