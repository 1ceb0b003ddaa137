#include "server/streamed_response.h"

#include <algorithm>

#include "server/api_error.h"

namespace awq::server {

void count_usage(Usage& usage, const GenerationEvent& done, bool first_of_prompt) {
  if (first_of_prompt) {
    usage.prompt_tokens += done.prompt_tokens;
    usage.cached_tokens += done.cached_tokens;
  }
  usage.completion_tokens += done.completion_tokens;
}

StreamedResponse::StreamedResponse(std::vector<std::shared_ptr<RequestStream>> choices, ResponseIds ids,
                                   int n_per_prompt, bool include_usage, bool logprobs)
    : ids_(std::move(ids)), n_per_prompt_(std::max(1, n_per_prompt)), include_usage_(include_usage), logprobs_(logprobs) {
  for (auto& c : choices) choices_.push_back(Choice{std::move(c)});
  open_ = choices_.size();
}

std::string StreamedResponse::next(std::chrono::milliseconds wait) {
  std::string out;
  if (finished_) return out;
  if (!started_) {
    started_ = true;
    if (ids_.chat) {  // the role first, at once: the client sees the response begin
      for (size_t c = 0; c < choices_.size(); ++c) out += sse_event(role_chunk(ids_, int(c), include_usage_));
      return out;
    }
  }
  const auto until = std::chrono::steady_clock::now() + wait;
  for (;;) {
    drain(out);
    if (!out.empty() || finished_) return out;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return out;
    // Nothing waiting: sleep on the first open choice's stream, in short slices so that the
    // others' events wait at most a slice (the engine steps all running choices together, so
    // they mostly come at once; a lone choice wakes this at once).
    const auto first = std::find_if(choices_.begin(), choices_.end(), [](const Choice& ch) { return !ch.done; });
    GenerationEvent ev;
    if (first->events->next(ev, std::min(left, std::chrono::milliseconds(10))))
      on_event(size_t(first - choices_.begin()), ev, out);
  }
}

void StreamedResponse::cancel() {
  for (Choice& c : choices_) c.events->cancel();
}

void StreamedResponse::drain(std::string& out) {
  GenerationEvent ev;
  for (size_t c = 0; c < choices_.size() && !finished_; ++c)
    while (!choices_[c].done && !finished_ && choices_[c].events->next(ev, std::chrono::milliseconds(0)))
      on_event(c, ev, out);
}

void StreamedResponse::on_event(size_t c, GenerationEvent& ev, std::string& out) {
  Choice& ch = choices_[c];
  switch (ev.kind) {
    case GenerationEvent::Kind::Text: {
      nlohmann::json lp = nullptr;
      if (logprobs_) {
        lp = logprobs_json(ids_.chat, ev.logprobs, ch.text_offset);
        for (const TokenLogprob& t : ev.logprobs) ch.text_offset += int64_t(t.token.size());
      }
      out += sse_event(text_chunk(ids_, int(c), ev.text, include_usage_, lp));
      return;
    }
    case GenerationEvent::Kind::Done:
      out += sse_event(finish_chunk(ids_, int(c), ev.finish_reason, include_usage_));
      ch.done = true;
      count_usage(usage_, ev, c % size_t(n_per_prompt_) == 0);
      if (--open_ > 0) return;
      if (include_usage_) out += sse_event(usage_chunk(ids_, usage_));
      break;
    case GenerationEvent::Kind::Error:
      // The whole response ends: the other choices are dropped.
      out += sse_event(nlohmann::json::parse(error_body(500, "generation failed: " + ev.error)));
      cancel();
      break;
  }
  out += sse_done();
  finished_ = true;
}

}  // namespace awq::server
