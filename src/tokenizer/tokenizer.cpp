// Tokenizer: loading tokenizer.json into its components and the encode / decode pipelines
// (the same order of steps as Hugging Face's TokenizerImpl).
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/json_node.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/special_config.h"
#include "tokenizer/utf8.h"

namespace awq {

using tok::JsonNode;

struct Tokenizer::Impl {
  std::string file;
  tok::AddedTokens added;
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::BpeModel> model;
  std::unique_ptr<tok::Decoder> decoder;
  tok::SpecialAffixes affixes;  // what add_special adds
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;
  int32_t vocab_size = 0;

  std::optional<int32_t> token_to_id(std::string_view t) const {
    if (auto id = added.find(t)) return id;
    return model->token_to_id(t);
  }
  // One stretch of raw text between added tokens: normalize, cut out the normalized
  // added tokens, encode_words the rest.
  void encode_stretch(std::string_view raw, bool at_start, std::vector<int32_t>& out) const;
  // Normalized text -> pre-tokenized words -> model ids.
  void encode_words(std::string text, bool at_start, std::vector<int32_t>& out) const;
};

namespace {

// A field of root, or a null node when absent (components may be omitted or null).
JsonNode field_or_null(const JsonNode& root, const char* key) {
  static const tok::json null_json;
  if (auto n = root.find(key)) return *n;
  return JsonNode(null_json, std::make_shared<const std::string>(root.file()), root.child_path(key));
}

tok::AddedToken read_added_token(const JsonNode& n) {
  tok::AddedToken t;
  const int64_t id = n.at("id").as_int();
  if (id < 0 || id > INT32_MAX) n.at("id").fail("expected a non-negative token id");
  t.id = int32_t(id);
  t.content = n.at("content").as_string();
  if (t.content.empty()) n.at("content").fail("empty added token");
  t.special = n.get_bool("special", false);
  t.lstrip = n.get_bool("lstrip", false);
  t.rstrip = n.get_bool("rstrip", false);
  t.single_word = n.get_bool("single_word", false);
  // Hugging Face's default: special tokens are matched on raw text, others on normalized.
  t.normalized = n.get_bool("normalized", !t.special);
  return t;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string file = path, dir;
  if (fs::is_directory(path, ec)) {
    file = (fs::path(path) / "tokenizer.json").string();
    dir = path;
    if (!fs::exists(file, ec)) throw Error(path + ": no tokenizer.json in this folder");
  } else {
    if (!fs::exists(path, ec)) throw Error(path + ": no such file or folder");
    dir = fs::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
  }

  auto impl = std::make_unique<Impl>();
  impl->file = file;
  const tok::json j = tok::parse_json_file(file);
  const JsonNode root(j, std::make_shared<const std::string>(file), "");
  if (!j.is_object()) root.fail("expected a JSON object");

  // The model first: the other components refer to its vocabulary.
  const JsonNode model = root.at("model");
  std::string type;
  if (auto t = model.find("type"))
    type = t->as_string();
  else if (model.find("merges"))
    type = "BPE";  // very old files have no "type"
  if (type != "BPE") model.fail("unknown type '" + type + "' (only BPE models are supported)");
  impl->model = std::make_unique<tok::BpeModel>(model);

  if (auto list = root.find("added_tokens"))
    for (size_t i = 0; i < list->array_size(); ++i) impl->added.add(read_added_token(list->at(i)));

  impl->normalizer = tok::make_normalizer(field_or_null(root, "normalizer"));
  impl->added.build(impl->normalizer.get());
  impl->pre_tokenizer = tok::make_pre_tokenizer(field_or_null(root, "pre_tokenizer"));
  impl->decoder = tok::make_decoder(field_or_null(root, "decoder"));
  auto affixes = tok::read_post_processor(field_or_null(root, "post_processor"));
  impl->vocab_size = std::max(impl->model->size(), impl->added.max_id() + 1);

  const Impl& ci = *impl;
  tok::SpecialConfig sc = tok::read_special_config(dir, [&ci](std::string_view t) { return ci.token_to_id(t); });
  impl->bos_id = sc.bos_id;
  impl->eos_ids = sc.eos_ids;
  if (affixes) {
    impl->affixes = std::move(*affixes);
  } else {
    // No post-processor: transformers' slow-tokenizer flags decide.
    if (sc.add_bos_token.value_or(false) && impl->bos_id >= 0) impl->affixes.prefix.push_back(impl->bos_id);
    if (sc.add_eos_token.value_or(false) && !impl->eos_ids.empty())
      impl->affixes.suffix.push_back(impl->eos_ids.front());
  }
  return Tokenizer(std::move(impl));
}

void Tokenizer::Impl::encode_words(std::string text, bool at_start, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  if (!pre_tokenizer) {
    model->tokenize(text, out);
    return;
  }
  std::vector<tok::Piece> pieces;
  pieces.push_back({std::move(text), at_start});
  pre_tokenizer->run(pieces);
  for (const tok::Piece& p : pieces) model->tokenize(p.text, out);
}

void Tokenizer::Impl::encode_stretch(std::string_view raw, bool at_start, std::vector<int32_t>& out) const {
  std::string norm(raw);
  if (normalizer) normalizer->normalize(norm);
  if (!added.any_normalized()) {
    encode_words(std::move(norm), at_start, out);
    return;
  }
  for (const tok::Segment& s : added.split(norm, /*normalized_pass=*/true)) {
    if (s.id >= 0)
      out.push_back(s.id);
    else
      encode_words(norm.substr(s.begin, s.end - s.begin), at_start && s.begin == 0, out);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  std::string repaired;
  if (!utf8::is_valid(text)) {
    repaired = utf8::repair(text);
    text = repaired;
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 8);
  if (add_special) out = impl_->affixes.prefix;
  for (const tok::Segment& s : impl_->added.split(text, /*normalized_pass=*/false)) {
    if (s.id >= 0)
      out.push_back(s.id);
    else
      impl_->encode_stretch(text.substr(s.begin, s.end - s.begin), s.begin == 0, out);
  }
  if (add_special) out.insert(out.end(), impl_->affixes.suffix.begin(), impl_->affixes.suffix.end());
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const tok::AddedToken* t = impl_->added.by_id(id)) {
      if (!(skip_special && t->special)) tokens.push_back(t->content);
      continue;
    }
    const std::string* s = impl_->model->id_to_token(id);
    if (!s)
      throw Error(impl_->file + ": decode: no token has id " + std::to_string(id) + " (vocab size " +
                  std::to_string(impl_->vocab_size) + ")");
    tokens.push_back(*s);
  }
  std::string out;
  if (impl_->decoder) {
    impl_->decoder->decode_chain(tokens);
    for (const std::string& t : tokens) out += t;
  } else {
    // Hugging Face joins with spaces when there is no decoder.
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
  }
  return out;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const tok::AddedToken* t = impl_->added.by_id(id)) return t->content;
  if (const std::string* s = impl_->model->id_to_token(id)) return *s;
  throw Error(impl_->file + ": no token has id " + std::to_string(id));
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view tok) const { return impl_->token_to_id(tok); }
int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
int32_t Tokenizer::bos_id() const { return impl_->bos_id; }
const std::vector<int32_t>& Tokenizer::eos_ids() const { return impl_->eos_ids; }

bool Tokenizer::add_bos() const {
  const auto& p = impl_->affixes.prefix;
  return impl_->bos_id >= 0 && std::find(p.begin(), p.end(), impl_->bos_id) != p.end();
}

bool Tokenizer::add_eos() const {
  for (int32_t id : impl_->affixes.suffix)
    if (std::find(impl_->eos_ids.begin(), impl_->eos_ids.end(), id) != impl_->eos_ids.end()) return true;
  return false;
}

bool Tokenizer::is_special(int32_t id) const {
  const tok::AddedToken* t = impl_->added.by_id(id);
  return t && t->special;
}

const std::string& Tokenizer::path() const { return impl_->file; }

}  // namespace awq
