// Element type of the KV cache: fp16 (IEEE binary16, the default, as llama.cpp's and our CUDA
// engine's) or f32 (bit-exact keys/values, for checks). Keys and values are computed in f32
// and rounded to the cache's type when written; attention widens them back to f32 to use them.
#pragma once
#include <cstddef>
#include <string>

namespace awq {

enum class KvType { F16, F32 };

// Bytes of one element: 2 or 4.
inline size_t kv_type_size(KvType t) { return t == KvType::F16 ? 2 : 4; }
// "f16" or "f32".
inline const char* kv_type_name(KvType t) { return t == KvType::F16 ? "f16" : "f32"; }
// "f16" / "f32" (the --kv-type values); awq::Error naming the value otherwise.
KvType parse_kv_type(const std::string& name);

}  // namespace awq
