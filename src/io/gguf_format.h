// GGUF v3 constants (the file format of llama.cpp / ggml, docs/gguf.md in ggml-org/ggml):
// metadata value types, the ggml tensor types we write and their block sizes, file types,
// token types. All integers in a GGUF file are little-endian.
//
// Layout: "GGUF" | u32 version=3 | u64 n_tensors | u64 n_kv | n_kv x (string key, u32 type,
// value) | n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
// | zero padding to general.alignment | tensor data (each tensor at its offset from here,
// offsets multiples of the alignment). A string is u64 length + bytes (no terminator); an
// array is u32 element type + u64 count + elements. ne[0] is the innermost (contiguous)
// dimension: a row-major [rows, cols] matrix has ne = {cols, rows}.
#pragma once
#include <cstdint>
#include <string>

namespace awq::gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kVersion = 3;
constexpr uint32_t kDefaultAlignment = 32;

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};

// ggml_type values of the tensor types we write or read.
enum class TensorType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8, BF16 = 30 };

// llama_ftype (general.file_type): what most tensors are.
enum class FileType : uint32_t { ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q4_0 = 2, MOSTLY_Q8_0 = 7 };

// tokenizer.ggml.token_type values (llama_token_type).
enum class TokenType : int32_t { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6 };

// Q4_0: 32 weights per block = fp16 scale d + 16 bytes of 4-bit codes (value = (q - 8) * d).
constexpr int kQ4_0Block = 32;
constexpr int kQ4_0Bytes = 2 + 16;
// Q8_0: 32 weights per block = fp16 scale d + 32 int8 codes (value = q * d).
constexpr int kQ8_0Block = 32;
constexpr int kQ8_0Bytes = 2 + 32;

// Elements per block (1 for plain types) and bytes per block.
inline int64_t block_elems(TensorType t) {
  return t == TensorType::Q4_0 ? kQ4_0Block : t == TensorType::Q8_0 ? kQ8_0Block : 1;
}
inline int64_t block_bytes(TensorType t) {
  switch (t) {
    case TensorType::F32: return 4;
    case TensorType::F16: case TensorType::BF16: return 2;
    case TensorType::Q4_0: return kQ4_0Bytes;
    case TensorType::Q8_0: return kQ8_0Bytes;
  }
  return 0;
}
inline bool is_known(TensorType t) { return block_bytes(t) != 0; }
inline std::string type_name(TensorType t) {
  switch (t) {
    case TensorType::F32: return "F32";
    case TensorType::F16: return "F16";
    case TensorType::BF16: return "BF16";
    case TensorType::Q4_0: return "Q4_0";
    case TensorType::Q8_0: return "Q8_0";
  }
  return "type " + std::to_string(uint32_t(t));
}

}  // namespace awq::gguf
