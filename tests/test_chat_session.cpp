// ChatSession on the tiny model: KV-cache reuse across turns gives the same reply as running
// the whole conversation from an empty cache; stop strings end a reply and never reach the
// text; old exchanges are dropped when the context fills; a message too long for the context
// is refused with the conversation unchanged; should_stop interrupts a reply.
#include <gtest/gtest.h>

#include <algorithm>

#include "support/expect_error.h"
#include "support/shared_data.h"
#include "runtime/chat_session.h"

namespace awq {
namespace {

struct Tiny {
  LlamaModel model{test::tiny_model_dir()};
  Tokenizer tok = Tokenizer::load(test::tiny_model_dir());
  ThreadPool pool{1};
};

Tiny& tiny() {
  static Tiny t;
  return t;
}

ChatSessionOptions greedy(int64_t n) {
  ChatSessionOptions o;
  o.max_new_tokens = n;
  o.sampler.temperature = 0.0f;
  return o;
}

// Greedy continuation of ids from an empty cache: the reference for what a turn must produce.
std::vector<int32_t> greedy_from_scratch(const std::vector<int32_t>& ids, int64_t n, KvType type = KvType::F16) {
  Tiny& t = tiny();
  KvCache cache = t.model.new_cache(int64_t(ids.size()) + n + 1, type);
  std::vector<float> logits;
  t.model.forward(t.pool, ids.data(), int64_t(ids.size()), cache, false, logits);
  std::vector<int32_t> out;
  const auto& eos = t.tok.eos_ids();
  while (int64_t(out.size()) < n) {
    const int32_t next = argmax(logits.data(), t.model.config().vocab_size);
    if (std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    out.push_back(next);
    t.model.forward(t.pool, &next, 1, cache, false, logits);
  }
  return out;
}

// With the default fp16 cache and with an f32 one (ChatSessionOptions::kv_type).
void check_cache_reuse(KvType type) {
  SCOPED_TRACE(kv_type_name(type));
  Tiny& t = tiny();
  const ChatTemplate tmpl = ChatTemplate::load(test::tiny_model_dir());
  ChatSessionOptions opt = greedy(12);
  opt.system_prompt = "You tell short stories.";
  opt.kv_type = type;
  ChatSession s(t.model, t.pool, t.tok, tmpl, 512, opt);
  std::string streamed;
  const auto r1 = s.send("Once upon a time", [&](const std::string& p) { streamed += p; });
  EXPECT_EQ(streamed, r1.text);  // the streamed pieces are the reply
  EXPECT_EQ(r1.reused_tokens, 0);
  const auto r2 = s.send("And then?", {});
  // The second turn reuses the whole first exchange's prompt from the cache ...
  EXPECT_GE(r2.reused_tokens, r1.prompt_tokens);
  // ... and still produces exactly what an empty cache gives for the whole conversation.
  std::vector<ChatMessage> conv = {{"system", opt.system_prompt}, {"user", "Once upon a time"}, {"assistant", r1.text}, {"user", "And then?"}};
  const auto ids = s.encode(conv);
  EXPECT_EQ(r2.prompt_tokens, int64_t(ids.size()));
  EXPECT_EQ(r2.text, t.tok.decode(greedy_from_scratch(ids, 12, type), true));
  ASSERT_EQ(s.messages().size(), 5u);
  EXPECT_EQ(s.messages()[4].content, r2.text);
  s.reset();
  ASSERT_EQ(s.messages().size(), 1u);  // the system prompt stays
  EXPECT_EQ(s.messages()[0].role, "system");
}

TEST(ChatSession, ReusesTheCacheAndMatchesAFromScratchRun) {
  check_cache_reuse(KvType::F16);
  check_cache_reuse(KvType::F32);
}

TEST(ChatSession, StopStringEndsTheReplyAndIsNotShown) {
  // A template whose turns end in " the": stop_strings() gives "the", a word the tiny model
  // writes within a few tokens.
  Tiny& t = tiny();
  const ChatTemplate tmpl = ChatTemplate::from_source(
      "{% for m in messages %}{{ m.role }}: {{ m.content }} the\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}",
      "<s>", "</s>");
  ASSERT_EQ(tmpl.stop_strings(), std::vector<std::string>{"the"});
  ChatSession s(t.model, t.pool, t.tok, tmpl, 512, greedy(64));
  const std::string user = "Once upon a time there was a king.";
  const auto ids = s.encode({{"user", user}});
  const std::string full = t.tok.decode(greedy_from_scratch(ids, 64), true);
  const size_t at = full.find("the");
  ASSERT_NE(at, std::string::npos) << "the tiny model's greedy reply has no 'the': " << full;
  std::string streamed;
  const auto r = s.send(user, [&](const std::string& p) { streamed += p; });
  EXPECT_EQ(r.stop_reason, "stop");
  EXPECT_EQ(r.text, full.substr(0, at));
  EXPECT_EQ(streamed, r.text);
}

TEST(ChatSession, DropsOldExchangesAndRefusesAMessageThatCannotFit) {
  Tiny& t = tiny();
  const ChatTemplate tmpl = ChatTemplate::load(test::tiny_model_dir());
  ChatSession s(t.model, t.pool, t.tok, tmpl, 96, greedy(8));
  int dropped = 0;
  for (int i = 0; i < 6; ++i) {
    std::string msg = "Tell me about the sea and the ships, number ";
    msg += std::to_string(i);  // += rather than literal + string: GCC 12's -Warray-bounds false positive
    dropped += s.send(msg, {}).dropped_turns;
  }
  EXPECT_GT(dropped, 0);
  // What is left still fits: the rendered conversation plus the reply stay within the context.
  EXPECT_LE(int64_t(s.encode(s.messages()).size()), 96);
  EXPECT_EQ(s.messages().back().role, "assistant");
  const auto before = s.messages();
  std::string long_msg;
  for (int i = 0; i < 150; ++i) long_msg += "word ";
  EXPECT_AWQ_ERROR(s.send(long_msg, {}), {"too long", "context holds 96"});
  ASSERT_EQ(s.messages().size(), before.size());  // unchanged
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(s.messages()[i].content, before[i].content);
  // The session goes on.
  EXPECT_NO_THROW(s.send("Short one", {}));
  ASSERT_GE(s.messages().size(), 2u);
  EXPECT_EQ(s.messages()[s.messages().size() - 2].content, "Short one");
}

TEST(ChatSession, ShouldStopInterruptsTheReply) {
  Tiny& t = tiny();
  const ChatTemplate tmpl = ChatTemplate::load(test::tiny_model_dir());
  ChatSession s(t.model, t.pool, t.tok, tmpl, 256, greedy(50));
  int polls = 0;
  const auto r = s.send("Once upon a time", {}, [&] { return ++polls > 3; });
  EXPECT_EQ(r.stop_reason, "interrupted");
  EXPECT_EQ(r.generated_tokens, 3);
  EXPECT_EQ(s.messages().back().content, r.text);  // the partial reply is kept
}

}  // namespace
}  // namespace awq
