#include "io/gguf_vocab.h"

#include <fstream>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf_format.h"
#include "io/json_file.h"
#include "tokenizer/tokenizer.h"

namespace awq::gguf {
namespace {
using json = nlohmann::json;

bool is_byte_token(const std::string& s) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
  return s.size() == 6 && s.compare(0, 3, "<0x") == 0 && hex(s[3]) && hex(s[4]) && s[5] == '>';
}

// Whether the tokenizer puts "▁" before the text (SentencePiece's add_dummy_prefix).
bool prepends_space(const json& tj) {
  auto check = [](const json& n, auto&& self) -> bool {
    if (!n.is_object()) return false;
    const std::string type = n.value("type", "");
    if (type == "Prepend") return n.value("prepend", "") == "\u2581";
    if (type == "Metaspace")
      return n.value("prepend_scheme", n.value("add_prefix_space", true) ? "always" : "never") != "never";
    if (type == "Sequence") {
      for (const char* k : {"normalizers", "pretokenizers"})
        if (n.contains(k))
          for (const json& c : n[k])
            if (self(c, self)) return true;
    }
    return false;
  };
  return check(tj.value("normalizer", json()), check) || check(tj.value("pre_tokenizer", json()), check);
}

}  // namespace

Vocab load_vocab(const std::string& model_dir, int32_t vocab_size) {
  const std::string path = model_dir + "/tokenizer.json";
  const json tj = read_json_file(path);
  const json& model = tj.value("model", json::object());
  if (model.value("type", "") != "BPE" || !model.value("byte_fallback", false))
    throw Error(path + ": model.type " + model.value("type", std::string("?")) +
                (model.value("byte_fallback", false) ? "" : " without byte_fallback") +
                ": export-gguf writes SentencePiece-style BPE tokenizers with byte fallback (Llama-2, Mistral, "
                "TinyLlama) only; byte-level BPE (Llama-3, Qwen) is not supported yet");
  if (!model.contains("vocab") || !model["vocab"].is_object()) throw Error(path + ": model.vocab is missing");

  Vocab v;
  v.tokens.assign(size_t(vocab_size), "");
  std::vector<bool> have(size_t(vocab_size), false);
  auto set = [&](int64_t id, const std::string& text) {
    if (id < 0 || id >= vocab_size)
      throw Error(path + ": token '" + text + "' has id " + std::to_string(id) + ", outside the model's vocab_size " +
                  std::to_string(vocab_size));
    v.tokens[size_t(id)] = text, have[size_t(id)] = true;
  };
  for (const auto& [text, id] : model["vocab"].items()) set(id.get<int64_t>(), text);
  v.types.assign(size_t(vocab_size), int32_t(TokenType::NORMAL));
  for (const json& a : tj.value("added_tokens", json::array())) {
    const int64_t id = a.value("id", int64_t(-1));
    set(id, a.value("content", ""));
    v.types[size_t(id)] = int32_t(a.value("special", false) ? TokenType::CONTROL : TokenType::USER_DEFINED);
  }

  // Scores from merge ranks (see the header).
  std::unordered_map<std::string, int32_t> id_of;
  for (int32_t i = 0; i < vocab_size; ++i)
    if (have[size_t(i)]) id_of.emplace(v.tokens[size_t(i)], i);
  const json& merges = model.value("merges", json::array());
  const float unmerged = -float(merges.size()) - 1.0f;
  v.scores.assign(size_t(vocab_size), 0.0f);
  std::vector<bool> scored(size_t(vocab_size), false);
  for (size_t r = 0; r < merges.size(); ++r) {
    std::string joined;
    const json& m = merges[r];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos) throw Error(path + ": merge " + std::to_string(r) + " '" + s + "' has no space");
      joined = s.substr(0, sp) + s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2) {
      joined = m[0].get<std::string>() + m[1].get<std::string>();
    } else {
      throw Error(path + ": merge " + std::to_string(r) + " is neither \"a b\" nor [a, b]");
    }
    auto it = id_of.find(joined);
    if (it != id_of.end() && !scored[size_t(it->second)]) v.scores[size_t(it->second)] = -float(r), scored[size_t(it->second)] = true;
  }

  const std::string unk_text = model.value("unk_token", json()).is_string() ? model["unk_token"].get<std::string>() : "";
  for (int32_t i = 0; i < vocab_size; ++i) {
    const std::string& t = v.tokens[size_t(i)];
    if (!have[size_t(i)]) {
      v.tokens[size_t(i)] = "[PAD" + std::to_string(i) + "]";
      v.types[size_t(i)] = int32_t(TokenType::UNUSED);
      v.scores[size_t(i)] = unmerged;
      continue;
    }
    if (!scored[size_t(i)] && v.types[size_t(i)] == int32_t(TokenType::NORMAL)) v.scores[size_t(i)] = unmerged;
    if (is_byte_token(t)) v.types[size_t(i)] = int32_t(TokenType::BYTE);
    if (!unk_text.empty() && t == unk_text) v.types[size_t(i)] = int32_t(TokenType::UNKNOWN), v.unk = i;
  }

  const Tokenizer tok = Tokenizer::load(model_dir);
  v.bos = tok.bos_id();
  v.eos = tok.eos_ids().empty() ? -1 : tok.eos_ids().front();
  v.add_bos = tok.add_bos();
  v.add_eos = tok.add_eos();
  v.add_space_prefix = prepends_space(tj);
  const std::string cfg = model_dir + "/tokenizer_config.json";
  std::ifstream probe(cfg);
  if (probe) {
    const json tc = read_json_file(cfg);
    if (tc.contains("chat_template") && tc["chat_template"].is_string()) v.chat_template = tc["chat_template"].get<std::string>();
  }
  return v;
}

}  // namespace awq::gguf
