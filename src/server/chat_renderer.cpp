#include "server/chat_renderer.h"

#include <cstdio>
#include <memory>

#if __has_include("tokenizer/chat_template.h")
#include "tokenizer/chat_template.h"
#define AWQ_HAVE_CHAT_TEMPLATE 1
#endif

namespace awq::server {

#ifndef AWQ_HAVE_CHAT_TEMPLATE
// TEMPORARY until branch jinja is merged (its ChatTemplate replaces this): plain ChatML.
ChatRenderer load_chat_renderer(const std::string&, const std::string&) {
  ChatRenderer r;
  r.stop_strings = {"<|im_end|>"};
  r.render = [](const std::vector<ChatTurn>& turns) {
    std::string s;
    for (const ChatTurn& t : turns) s += "<|im_start|>" + t.role + "\n" + t.content + "<|im_end|>\n";
    return s + "<|im_start|>assistant\n";
  };
  return r;
}
#else
ChatRenderer load_chat_renderer(const std::string& model_dir, const std::string& override_) {
  auto tmpl = std::make_shared<const ChatTemplate>(ChatTemplate::load(model_dir, override_));
  if (tmpl->fallback())
    std::fprintf(stderr, "awq serve: the model has no chat template; using ChatML (--chat-template overrides)\n");
  ChatRenderer r;
  r.stop_strings = tmpl->stop_strings();
  r.render = [tmpl](const std::vector<ChatTurn>& turns) {
    std::vector<ChatMessage> messages;
    messages.reserve(turns.size());
    for (const ChatTurn& t : turns) messages.push_back({t.role, t.content});
    return tmpl->render(messages, /*add_generation_prompt=*/true);
  };
  return r;
}
#endif

}  // namespace awq::server
