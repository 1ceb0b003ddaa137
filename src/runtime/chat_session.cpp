#include "runtime/chat_session.h"

#include <algorithm>
#include <chrono>

#include "core/clock.h"
#include "core/error.h"

namespace awq {

ChatSession::ChatSession(LlamaModel& model, ThreadPool& pool, const Tokenizer& tok, const ChatTemplate& tmpl,
                         int64_t ctx, ChatSessionOptions opt)
    : ChatSession(std::make_unique<CpuSequence>(model, pool, ctx, opt.kv_type), nullptr, tok, tmpl, opt) {}

ChatSession::ChatSession(SequenceModel& seq, const Tokenizer& tok, const ChatTemplate& tmpl, ChatSessionOptions opt)
    : ChatSession(nullptr, &seq, tok, tmpl, std::move(opt)) {}

ChatSession::ChatSession(std::unique_ptr<SequenceModel> owned, SequenceModel* seq, const Tokenizer& tok,
                         const ChatTemplate& tmpl, ChatSessionOptions opt)
    : owned_(std::move(owned)), seq_(seq ? *seq : *owned_), tok_(tok), tmpl_(tmpl), opt_(std::move(opt)),
      sampler_(opt_.sampler) {
  seq_.clear();
  stop_ids_ = tok_.eos_ids();
  for (const std::string& s : tmpl_.stop_strings()) {
    // A stop string that is one special token is skipped in decoded text: stop on its id.
    const auto id = tok_.token_to_id(s);
    if (id && tok_.is_special(*id)) {
      if (std::find(stop_ids_.begin(), stop_ids_.end(), *id) == stop_ids_.end()) stop_ids_.push_back(*id);
    } else {
      stop_strings_.push_back(s);
    }
  }
  reset();
}

void ChatSession::reset() {
  messages_.clear();
  if (!opt_.system_prompt.empty()) messages_.push_back({"system", opt_.system_prompt});
  // The cached tokens stay valid (a prefix such as the system prompt is reused next turn).
}

std::vector<int32_t> ChatSession::encode(const std::vector<ChatMessage>& msgs) const {
  const std::string text = tmpl_.render(msgs, /*add_generation_prompt=*/true);
  return tok_.encode(text, tmpl_.add_special_tokens(text));
}

ChatSession::Reply ChatSession::send(const std::string& user_text,
                                     const std::function<void(const std::string&)>& on_text,
                                     const std::function<bool()>& should_stop) {
  Reply r;
  const std::vector<ChatMessage> before = messages_;
  messages_.push_back({"user", user_text});
  const int64_t ctx = seq_.ctx();
  // Room to leave for the reply before dropping old turns.
  const int64_t reserve = std::max<int64_t>(1, std::min<int64_t>(opt_.max_new_tokens, ctx / 4));
  std::vector<int32_t> ids;
  try {
    for (;;) {
      ids = encode(messages_);
      if (int64_t(ids.size()) + reserve <= ctx) break;
      // Drop the oldest exchange (a user message and the reply after it), never the system
      // prompt nor the new message.
      const size_t first = !messages_.empty() && messages_[0].role == "system" ? 1 : 0;
      if (messages_.size() >= first + 3) {
        messages_.erase(messages_.begin() + long(first), messages_.begin() + long(first) + 2);
        ++r.dropped_turns;
        continue;
      }
      if (int64_t(ids.size()) < ctx) break;  // fits, with little room for the reply
      throw Error("the message is too long: with the chat template the conversation is " +
                  std::to_string(ids.size()) + " tokens but the context holds " + std::to_string(ctx) +
                  " (shorten the message or raise -c/--ctx)");
    }
  } catch (...) {
    messages_ = before;
    throw;
  }
  if (ids.empty()) {
    messages_ = before;
    throw Error("the chat template (" + tmpl_.origin() + ") rendered an empty prompt");
  }
  r.prompt_tokens = int64_t(ids.size());

  // Reuse the cached keys/values of the longest common prefix; at least the last prompt
  // token is run again for its logits.
  size_t p = 0;
  while (p < cached_.size() && p < ids.size() && cached_[p] == ids[p]) ++p;
  p = std::min(p, ids.size() - 1);
  seq_.truncate(int64_t(p));
  cached_.resize(p);
  r.reused_tokens = int64_t(p);

  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits;  // [1, vocab]
  seq_.forward(ids.data() + p, int64_t(ids.size() - p), false, logits);
  cached_.insert(cached_.end(), ids.begin() + long(p), ids.end());
  r.prefill_seconds = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  const int64_t vocab = seq_.config().vocab_size;
  std::vector<int32_t> history = ids;  // for the repetition penalty
  StreamDecoder stream(tok_, /*skip_special=*/true);
  std::string pending;  // decoded text not yet passed on (it may start a stop string)
  auto emit = [&](const std::string& s) {
    if (s.empty()) return;
    r.text += s;
    if (on_text) on_text(s);
  };
  // Passes on what is certainly not part of a stop string; true when one was found (its
  // text and anything after it are dropped).
  auto drain = [&](bool final) {
    size_t hit = std::string::npos;
    for (const std::string& s : stop_strings_) hit = std::min(hit, pending.find(s));
    if (hit != std::string::npos) {
      emit(pending.substr(0, hit));
      pending.clear();
      return true;
    }
    const size_t keep = final ? 0 : stop_holdback(pending, stop_strings_);
    emit(pending.substr(0, pending.size() - keep));
    pending.erase(0, pending.size() - keep);
    return false;
  };

  r.stop_reason = "length";
  bool stopped_by_string = false;
  sampler_.start_reply();  // presence / frequency penalties count this reply's tokens only
  while (r.generated_tokens < opt_.max_new_tokens) {
    if (should_stop && should_stop()) {
      r.stop_reason = "interrupted";
      break;
    }
    const int32_t next = sampler_.sample(logits.data(), vocab, history);
    if (std::find(stop_ids_.begin(), stop_ids_.end(), next) != stop_ids_.end()) {
      r.stop_reason = "eos";
      break;
    }
    ++r.generated_tokens;
    history.push_back(next);
    pending += stream.push(next);
    if (drain(false)) {
      r.stop_reason = "stop";
      stopped_by_string = true;
      break;
    }
    if (r.generated_tokens >= opt_.max_new_tokens) break;
    if (seq_.n_past() >= seq_.ctx()) {
      r.stop_reason = "context";
      break;
    }
    seq_.forward(&next, 1, false, logits);
    cached_.push_back(next);
  }
  if (!stopped_by_string) {
    pending += stream.flush();
    if (drain(true)) r.stop_reason = "stop";
  }
  r.decode_seconds = seconds_since(t0);
  messages_.push_back({"assistant", r.text});
  return r;
}

}  // namespace awq
