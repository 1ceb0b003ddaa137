// Decoders of tokenizer.json ("decoder" field): turn the list of token strings back into
// text. Like Hugging Face's decode_chain, each step maps a list of strings to a list of
// strings; the caller concatenates the final list.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_node.h"

namespace awq::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Builds a decoder from its JSON object; null JSON gives nullptr. Supported types:
// Sequence, ByteFallback, Fuse, Strip, Replace, ByteLevel, Metaspace, BPEDecoder.
// Anything else is an awq::Error naming the field.
std::unique_ptr<Decoder> make_decoder(const JsonNode& node);

}  // namespace awq::tok
