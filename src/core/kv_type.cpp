#include "core/kv_type.h"

#include "core/error.h"

namespace awq {

KvType parse_kv_type(const std::string& name) {
  if (name == "f16") return KvType::F16;
  if (name == "f32") return KvType::F32;
  throw Error("KV cache type '" + name + "' is not known: use f16 (the default) or f32");
}

}  // namespace awq
