// The chat endpoint's view of the model's chat template (tokenizer/chat_template.h).
#pragma once
#include <string>

#include "server/http_server.h"
#include "tokenizer/tokenizer.h"

namespace awq::server {

// Loads MODEL_DIR's chat template (override_: a file or a builtin name, as ChatTemplate::load
// takes it; "": the model's own, ChatML when it has none, with a notice on stderr) and wraps
// it: prompt_ids() renders the messages with the generation prompt and encodes them (BOS as
// the template wants); the template's end-of-turn strings become stop ids (single special
// tokens) or stop strings. tok must outlive the result. Throws awq::Error when the template
// cannot be loaded.
ChatRenderer load_chat_renderer(const std::string& model_dir, const std::string& override_,
                                const Tokenizer& tok);

}  // namespace awq::server
