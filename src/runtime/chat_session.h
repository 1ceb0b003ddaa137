// A multi-turn chat with one model: keeps the conversation, renders it with the model's chat
// template every turn, and reuses the KV cache for the tokens the new rendering shares with
// what the cache already holds (the whole earlier conversation, in practice), so each turn
// only prefills the new user message. Streams the reply and stops at an EOS id, at a special
// token that ends a turn (e.g. <|im_end|>, <|eot_id|>), or at a stop string in the text
// (never passed on to the caller).
//
// When the conversation outgrows the context, the oldest user/assistant exchanges are dropped
// (the system prompt stays) and Reply::dropped_turns says how many; a message that does not
// fit even alone is refused with an awq::Error and the conversation is left as it was.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/llama_model.h"
#include "runtime/generate.h"
#include "runtime/sequence_model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace awq {

struct ChatSessionOptions {
  int64_t max_new_tokens = 512;  // per reply
  SamplerParams sampler;         // one sampler (one seeded RNG) for the whole session
  std::string system_prompt;     // empty: none
  KvType kv_type = KvType::F16;  // element type of the KV cache (the CPU constructor's)
};

class ChatSession {
 public:
  struct Reply {
    std::string text;               // the reply, without the stop string
    std::string stop_reason;        // "eos", "stop", "length", "context", "interrupted"
    int64_t prompt_tokens = 0;      // tokens of the rendered conversation
    int64_t reused_tokens = 0;      // of those, already in the KV cache
    int64_t generated_tokens = 0;
    int dropped_turns = 0;          // oldest exchanges dropped to fit the context
    double prefill_seconds = 0.0, decode_seconds = 0.0;
  };

  // The chat runs on `seq` (any engine; its context is the session's; its cache is emptied);
  // seq, tokenizer and template must outlive the session.
  ChatSession(SequenceModel& seq, const Tokenizer& tok, const ChatTemplate& tmpl, ChatSessionOptions opt);
  // The same on the CPU engine with a KV cache of ctx positions (opt.kv_type) that the session
  // owns; the model, pool, tokenizer and template must outlive it.
  ChatSession(LlamaModel& model, ThreadPool& pool, const Tokenizer& tok, const ChatTemplate& tmpl,
              int64_t ctx, ChatSessionOptions opt);

  // Adds the user message and generates the assistant's reply, passing each completed piece
  // of text to on_text. should_stop (may be empty) is polled before every token: true ends
  // the reply ("interrupted"; the text so far stays in the history). Throws awq::Error, with
  // the conversation unchanged, when the message does not fit the context or the template
  // refuses the conversation.
  Reply send(const std::string& user_text, const std::function<void(const std::string&)>& on_text,
             const std::function<bool()>& should_stop = {});

  // Forgets the conversation (the system prompt stays) and the cached tokens.
  void reset();

  const std::vector<ChatMessage>& messages() const { return messages_; }
  int64_t ctx() const { return seq_.ctx(); }
  // The ids a conversation is encoded to (the template's text, BOS as the template wants).
  std::vector<int32_t> encode(const std::vector<ChatMessage>& msgs) const;

 private:
  // seq, or *owned when seq is null.
  ChatSession(std::unique_ptr<SequenceModel> owned, SequenceModel* seq, const Tokenizer& tok,
              const ChatTemplate& tmpl, ChatSessionOptions opt);

  std::unique_ptr<SequenceModel> owned_;  // the CPU constructor's engine
  SequenceModel& seq_;
  const Tokenizer& tok_;
  const ChatTemplate& tmpl_;
  ChatSessionOptions opt_;
  Sampler sampler_;
  std::vector<int32_t> cached_;  // the ids whose keys/values seq_ holds, in order
  std::vector<ChatMessage> messages_;
  std::vector<std::string> stop_strings_;  // matched in the text
  std::vector<int32_t> stop_ids_;          // EOS ids and special end-of-turn tokens
};

}  // namespace awq
