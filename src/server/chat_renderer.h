// The chat endpoint's view of the model's chat template (tokenizer/chat_template.h).
#pragma once
#include <string>

#include "server/http_server.h"

namespace awq::server {

// Loads MODEL_DIR's chat template (override_: a file or a name, as ChatTemplate::load takes
// it; "": the model's own, ChatML when it has none, with a warning on stderr) and wraps it:
// render() renders the messages with the generation prompt; stop_strings are the template's
// end-of-turn strings. Throws awq::Error when the template cannot be loaded.
ChatRenderer load_chat_renderer(const std::string& model_dir, const std::string& override_);

}  // namespace awq::server
