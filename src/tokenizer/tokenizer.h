// awq::Tokenizer: a Hugging Face tokenizer.json loader, encoder and decoder for the BPE
// tokenizers of Llama-2 / Mistral (SentencePiece-style, byte fallback) and of GPT-2,
// Llama-3, Qwen2/3 (byte-level BPE with a pre-tokenizer regex). It reproduces the ids of
// the `tokenizers` library (encode with / without add_special_tokens, decode with / without
// skip_special_tokens), including its treatment of added tokens:
//
//  * added_tokens are cut out of the raw text before normalization, longest match first,
//    so a special-token string such as "<s>" typed in the text becomes that special token
//    even with add_special = false (as in Hugging Face).
//  * added tokens with normalized = true are matched in the normalized text of the
//    stretches between raw matches (again as in Hugging Face).
//
// BOS / EOS come from tokenizer_config.json (bos_token / eos_token, a string or an
// {"content": ...} object) and from config.json / generation_config.json (bos_token_id,
// eos_token_id: an int or a list) in the same folder. What encode(text, true) adds comes
// from tokenizer.json's post_processor; only when that is null do tokenizer_config.json's
// add_bos_token / add_eos_token decide.
//
// Input that is not valid UTF-8 is encoded as if each ill-formed sequence were U+FFFD.
// Every user-facing failure (bad file, unknown component type, bad regex, unknown id in
// decode) throws awq::Error with a one-line message naming the file and the field.
//
// Not supported: Unigram / WordPiece / WordLevel models and the Precompiled
// (SentencePiece charsmap) and Bert normalizers (load fails naming the field); pair
// encodings. Truncation, padding and BPE dropout are ignored (encoding is deterministic).
// Regexes run on PCRE2 rather than Oniguruma; the patterns of GPT-2, Llama-3 and Qwen2
// behave the same (\s, \p{L}, \p{N} are Unicode-aware in both).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace awq {

class Tokenizer {
 public:
  // path: a folder holding tokenizer.json (and optionally tokenizer_config.json,
  // config.json, generation_config.json), or the path of a tokenizer.json file (its
  // folder is then searched for the other files).
  static Tokenizer load(const std::string& path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // add_special = Hugging Face's add_special_tokens (the post-processor's BOS/EOS).
  // Thread-safe.
  std::vector<int32_t> encode(std::string_view text, bool add_special) const;
  // Throws awq::Error on an id that names no token. Always returns valid UTF-8.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  std::string id_to_token(int32_t id) const;  // the raw vocab string; throws on unknown id
  std::optional<int32_t> token_to_id(std::string_view tok) const;
  int32_t vocab_size() const;  // max id + 1 over vocab and added tokens
  int32_t bos_id() const;      // -1 if none
  const std::vector<int32_t>& eos_ids() const;  // the first is the tokenizer's eos_token
  bool add_bos() const;        // whether encode(..., true) prepends BOS
  bool add_eos() const;        // whether encode(..., true) appends an EOS id
  bool is_special(int32_t id) const;  // an added token marked special
  const std::string& path() const;    // the tokenizer.json file

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Incremental detokenization for streaming generation: feed ids one at a time, get back
// only complete UTF-8 text. The concatenation of everything push() and flush() return
// equals tokenizer.decode(all ids, skip_special).
//
// How: the approach of Hugging Face's DecodeStream / TGI / llama.cpp servers. Keep a
// short window of ids, decode it with and without the new id and emit the difference,
// unless the decoded text still ends in U+FFFD (an incomplete byte sequence: held back
// until a later id completes it, or until flush). Decoding a window that starts with an
// already-emitted token keeps position-dependent rules (SentencePiece's strip of the
// first leading space, Metaspace's first-token rule) consistent between the two decodes.
// Holds a reference to the tokenizer, which must outlive it.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = true);
  // Text completed by this id (possibly empty).
  std::string push(int32_t id);
  // Whatever is still held back (an unfinished byte sequence comes out as U+FFFD), and
  // the end of the sequence: the next push() starts a new one.
  std::string flush();

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // the window
  std::string prefix_;        // decode of the context ids_[0, prefix_index_)
  size_t prefix_index_ = 0;
};

}  // namespace awq
