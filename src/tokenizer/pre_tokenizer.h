// Pre-tokenizers of tokenizer.json ("pre_tokenizer" field): cut each normalized stretch of
// text into words; the BPE model then runs on each word separately.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_node.h"

namespace awq::tok {

// One word in the making.
struct Piece {
  std::string text;
  // True when the piece starts at offset 0 of the whole input text (what Metaspace's
  // prepend_scheme "first" asks about).
  bool at_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits (and possibly rewrites) one piece, appending the results to out. Empty
  // results are dropped.
  virtual void split(const Piece& in, std::vector<Piece>& out) const = 0;

  // Applies split() to every piece, in order.
  void run(std::vector<Piece>& pieces) const;
};

// Builds a pre-tokenizer from its JSON object; null JSON gives nullptr. Supported types:
// Sequence, ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation,
// BertPreTokenizer. Anything else is an awq::Error naming the field.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonNode& node);

}  // namespace awq::tok
