// Normalizers of tokenizer.json ("normalizer" field): string -> string rewrites applied to
// each stretch of input text between added tokens, before pre-tokenization.
#pragma once
#include <memory>
#include <string>

#include "tokenizer/json_node.h"

namespace awq::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& s) const = 0;
};

// Builds a normalizer from its JSON object; null JSON gives nullptr. Supported types:
// Sequence, Prepend, Replace (String / Regex), NFC, NFD, NFKC, NFKD, Lowercase, Strip,
// StripAccents, ByteLevel. Anything else is an awq::Error naming the field.
std::unique_ptr<Normalizer> make_normalizer(const JsonNode& node);

}  // namespace awq::tok
