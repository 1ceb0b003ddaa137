#include "tokenizer/post_processor.h"

#include <optional>

namespace awq::tok {

namespace {

int32_t id_field(const JsonNode& n) {
  const int64_t v = n.as_int();
  if (v < 0 || v > INT32_MAX) n.fail("expected a token id");
  return int32_t(v);
}

// TemplateProcessing: "single" is a list of {"SpecialToken": {"id": name}} and
// {"Sequence": {"id": "A"}}; each special name is looked up in "special_tokens".
SpecialAffixes template_affixes(const JsonNode& node) {
  SpecialAffixes a;
  JsonNode single = node.at("single");
  JsonNode specials = node.at("special_tokens");
  bool seen_sequence = false;
  for (size_t i = 0; i < single.array_size(); ++i) {
    JsonNode piece = single.at(i);
    if (piece.find("Sequence")) {
      seen_sequence = true;
      continue;
    }
    auto sp = piece.find("SpecialToken");
    if (!sp) piece.fail("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    const std::string name = sp->at("id").as_string();
    auto entry = specials.find(name.c_str());
    if (!entry) sp->fail("special token '" + name + "' is not in special_tokens");
    JsonNode ids = entry->at("ids");
    for (size_t k = 0; k < ids.array_size(); ++k)
      (seen_sequence ? a.suffix : a.prefix).push_back(id_field(ids.at(k)));
  }
  return a;
}

// RobertaProcessing / BertProcessing: "cls": [token, id], "sep": [token, id].
SpecialAffixes cls_sep_affixes(const JsonNode& node) {
  SpecialAffixes a;
  a.prefix.push_back(id_field(node.at("cls").at(1)));
  a.suffix.push_back(id_field(node.at("sep").at(1)));
  return a;
}

}  // namespace

std::optional<SpecialAffixes> read_post_processor(const JsonNode& node) {
  if (node.is_null()) return std::nullopt;
  const std::string type = node.type();
  if (type == "TemplateProcessing") return template_affixes(node);
  if (type == "ByteLevel") return SpecialAffixes{};
  if (type == "RobertaProcessing" || type == "BertProcessing") return cls_sep_affixes(node);
  if (type == "Sequence") {
    // Llama-3.1 style: [ByteLevel, TemplateProcessing]. Each processor wraps the output of
    // the one before it, so a later prefix goes in front of an earlier one.
    SpecialAffixes a;
    JsonNode list = node.at("processors");
    for (size_t i = 0; i < list.array_size(); ++i) {
      auto part = read_post_processor(list.at(i));
      if (!part) continue;
      a.prefix.insert(a.prefix.begin(), part->prefix.begin(), part->prefix.end());
      a.suffix.insert(a.suffix.end(), part->suffix.begin(), part->suffix.end());
    }
    return a;
  }
  node.fail("unknown type '" + type + "'");
}

}  // namespace awq::tok
