#include "tokenizer/tokenizer.h"

namespace awq {

namespace {
bool ends_with_replacement_char(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

// Length of the common prefix of a and b, backed up to a character boundary of b.
size_t common_prefix(const std::string& a, const std::string& b) {
  size_t k = 0;
  while (k < a.size() && k < b.size() && a[k] == b[k]) ++k;
  while (k > 0 && k < b.size() && (static_cast<unsigned char>(b[k]) & 0xC0) == 0x80) --k;
  return k;
}
}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool skip_special) : tok_(&tok), skip_special_(skip_special) {}

// The window ids_ = [context..., pending...]: ids_[0, prefix_index_) were already emitted
// and are kept only as context; prefix_ is the decode of those context ids alone. When
// the decode of the whole window grows past prefix_ and is complete UTF-8, the growth is
// emitted and the ids decoded in this step become the next context.
std::string StreamDecoder::push(int32_t id) {
  ids_.push_back(id);
  std::string text = tok_->decode(ids_, skip_special_);
  if (text.size() <= prefix_.size() || ends_with_replacement_char(text)) return {};
  std::string out;
  if (text.compare(0, prefix_.size(), prefix_) == 0) {
    out = text.substr(prefix_.size());
  } else {
    // A decoder rewrote text it had already produced (only seen with invalid byte
    // sequences): emit from the first difference.
    out = text.substr(common_prefix(prefix_, text));
  }
  const size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + ptrdiff_t(prefix_index_));
  prefix_ = tok_->decode(ids_, skip_special_);
  prefix_index_ = new_prefix_index;
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  if (!ids_.empty()) {
    std::string text = tok_->decode(ids_, skip_special_);
    if (text.size() > prefix_.size()) out = text.substr(common_prefix(prefix_, text));
  }
  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return out;
}

}  // namespace awq
