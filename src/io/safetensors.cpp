// Safetensors reader: every field of the header is checked before a TensorView is built,
// so a consumer may trust dtype, shape, nbytes and that [data, data + nbytes) is mapped.
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace awq {
namespace {

using json = nlohmann::json;

constexpr const char* kNotSafetensors = "the file is truncated or not safetensors";

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A JSON number that is a non-negative integer, as uint64; nullopt for anything else.
std::optional<uint64_t> as_u64(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0) return uint64_t(j.get<int64_t>());
  return std::nullopt;
}

std::string known_dtypes() {
  std::string s;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16,
                  DType::I8, DType::U8, DType::BOOL}) {
    if (!s.empty()) s += ' ';
    s += dtype_name(t);
  }
  return s;
}

// Parses the header, rejecting invalid JSON and duplicate top-level keys (which
// nlohmann::json would otherwise resolve silently by keeping the last one).
json parse_header(const std::string& path, const char* begin, const char* end) {
  std::set<std::string> keys;
  std::string duplicate;
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!keys.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json h;
  try {
    h = json::parse(begin, end, cb);
  } catch (const json::exception& e) {
    throw Error(path + ": header is not valid JSON (" + e.what() + "); " + kNotSafetensors);
  }
  check(h.is_object(), path + ": header is JSON but not an object; " + kNotSafetensors);
  check(duplicate.empty(), path + ": header names '" + duplicate + "' twice; the file is corrupt");
  return h;
}

struct Entry {
  TensorView view;
  uint64_t begin = 0, end = 0;
};

std::string offsets_str(uint64_t b, uint64_t e) {
  std::string s = "[";
  s += std::to_string(b);
  s += ", ";
  s += std::to_string(e);
  return s + "]";
}

// Validates one tensor entry of the header; data/size describe the data section.
Entry parse_entry(const std::string& path, const std::string& name, const json& j,
                  const uint8_t* data, uint64_t data_size) {
  const std::string where = path + ": tensor '" + name + "'";
  check(j.is_object(), where + ": entry is not a JSON object");

  auto dt = j.find("dtype");
  check(dt != j.end() && dt->is_string(), where + ": missing or non-string field 'dtype'");
  const auto& dts = dt->get_ref<const std::string&>();
  std::optional<DType> dtype = parse_dtype(dts);
  check(dtype.has_value(), where + ": dtype '" + dts + "' is not supported (supported: " +
                               known_dtypes() + ")");

  auto sh = j.find("shape");
  check(sh != j.end() && sh->is_array(), where + ": missing or non-array field 'shape'");
  Entry e;
  e.view.name = name;
  e.view.dtype = *dtype;
  uint64_t numel = 1;
  for (const json& d : *sh) {
    check(d.is_number_integer(), where + ": shape " + sh->dump() + " holds a non-integer");
    std::optional<uint64_t> v = as_u64(d);
    check(v.has_value(), where + ": shape " + sh->dump() + " has a negative dimension");
    check(*v <= uint64_t(std::numeric_limits<int64_t>::max()) &&
              !__builtin_mul_overflow(numel, *v, &numel) &&
              numel <= uint64_t(std::numeric_limits<int64_t>::max()),
          where + ": shape " + sh->dump() + " has more elements than fit in 64 bits");
    e.view.shape.push_back(int64_t(*v));
  }
  uint64_t need = 0;
  check(!__builtin_mul_overflow(numel, uint64_t(dtype_size(*dtype)), &need),
        where + ": shape " + sh->dump() + " is too large in bytes for 64 bits");

  auto off = j.find("data_offsets");
  check(off != j.end() && off->is_array() && off->size() == 2,
        where + ": field 'data_offsets' must be an array [begin, end]");
  std::optional<uint64_t> b = as_u64((*off)[0]), en = as_u64((*off)[1]);
  check(b && en, where + ": data_offsets " + off->dump() + " must be non-negative integers");
  e.begin = *b;
  e.end = *en;
  check(e.begin <= e.end && e.end <= data_size,
        where + ": data_offsets " + offsets_str(e.begin, e.end) +
            " lie outside the data section (" + std::to_string(data_size) +
            " bytes); the file is truncated or corrupt");
  check(e.end - e.begin == need, where + ": " + dts + " " + e.view.shape_str() + " needs " +
                                     std::to_string(need) + " bytes but data_offsets span " +
                                     std::to_string(e.end - e.begin));
  e.view.data = data + e.begin;
  e.view.nbytes = size_t(need);
  return e;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& m) {
  check(m.is_object(), path + ": '__metadata__' is not a JSON object of strings");
  std::map<std::string, std::string> out;
  for (auto it = m.begin(); it != m.end(); ++it) {
    check(it.value().is_string(),
          path + ": '__metadata__' field '" + it.key() + "' is not a string");
    out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(std::make_unique<MappedFile>(path)) {
  const uint8_t* base = file_->data();
  const uint64_t size = file_->size();
  check(size >= 8, path + ": file is " + std::to_string(size) +
                       " bytes, too short to hold the 8-byte header length; " + kNotSafetensors);
  const uint64_t hlen = read_u64_le(base);
  check(hlen <= size - 8, path + ": header length " + std::to_string(hlen) +
                              " runs past the end of the file (" + std::to_string(size) +
                              " bytes); " + kNotSafetensors);
  const char* hbegin = reinterpret_cast<const char*>(base + 8);
  json header = parse_header(path, hbegin, hbegin + hlen);

  const uint8_t* data = base + 8 + hlen;
  const uint64_t data_size = size - 8 - hlen;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      metadata_ = parse_metadata(path, it.value());
      continue;
    }
    entries.push_back(parse_entry(path, it.key(), it.value(), data, data_size));
  }

  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.view.name < b.view.name;
  });
  // Overlap: a non-empty tensor starting before the furthest end seen so far. Empty tensors
  // own no bytes and never overlap; holes between tensors are tolerated.
  const Entry* furthest = nullptr;
  for (const Entry& e : entries) {
    if (e.end == e.begin) continue;
    if (furthest && e.begin < furthest->end)
      throw Error(path + ": tensors '" + furthest->view.name + "' (data_offsets " +
                  offsets_str(furthest->begin, furthest->end) + ") and '" + e.view.name +
                  "' (data_offsets " + offsets_str(e.begin, e.end) +
                  ") overlap; the file is corrupt");
    if (!furthest || e.end > furthest->end) furthest = &e;
  }

  tensors_.reserve(entries.size());
  for (Entry& e : entries) {
    index_[e.view.name] = tensors_.size();
    tensors_.push_back(std::move(e.view));
  }
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace awq
