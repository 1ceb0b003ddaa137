#include "server/chat_renderer.h"

#include <cstdio>
#include <memory>

#include "tokenizer/chat_template.h"

namespace awq::server {

ChatRenderer load_chat_renderer(const std::string& model_dir, const std::string& override_,
                                const Tokenizer& tok) {
  auto tmpl = std::make_shared<const ChatTemplate>(ChatTemplate::load(model_dir, override_));
  if (tmpl->fallback())
    std::fprintf(stderr, "awq serve: the model has no chat template; using ChatML (--chat-template overrides)\n");
  ChatRenderer r;
  // A stop string that is one special token never shows in the decoded text (special tokens
  // are skipped): stop on its id instead.
  for (const std::string& s : tmpl->stop_strings()) {
    const auto id = tok.token_to_id(s);
    if (id && tok.is_special(*id)) r.stop_ids.push_back(*id);
    else r.stop_strings.push_back(s);
  }
  r.prompt_ids = [tmpl, &tok](const std::vector<ChatTurn>& turns) {
    std::vector<ChatMessage> messages;
    messages.reserve(turns.size());
    for (const ChatTurn& t : turns) messages.push_back({t.role, t.content});
    const std::string text = tmpl->render(messages, /*add_generation_prompt=*/true);
    return tok.encode(text, tmpl->add_special_tokens(text));
  };
  return r;
}

}  // namespace awq::server
