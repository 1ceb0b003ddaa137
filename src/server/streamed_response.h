// The Server-Sent Events of one streamed completion request: the events of its choices (one
// RequestStream each, choice index = position) as OpenAI chunks carrying their "index",
// interleaved as the engine yields them. Each choice ends with its own finish_reason chunk;
// after the last one come the usage chunk (stream_options.include_usage) and one [DONE].
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/scheduler.h"
#include "server/openai_format.h"

namespace awq::server {

// Adds a choice's Done event to the response's usage; its prompt counts where the choice is
// the first of its prompt (first_of_prompt), as OpenAI counts each prompt once.
void count_usage(Usage& usage, const GenerationEvent& done, bool first_of_prompt);

class StreamedResponse {
 public:
  // choices: prompt by prompt, n_per_prompt per prompt (usage counts each prompt once).
  // logprobs: the request asked for them (the Text events carry them).
  StreamedResponse(std::vector<std::shared_ptr<RequestStream>> choices, ResponseIds ids, int n_per_prompt,
                   bool include_usage, bool logprobs);

  // The SSE bytes ready now (whole events), waiting up to `wait` for some; empty when none
  // came in time. The first call returns chat's role chunks at once.
  std::string next(std::chrono::milliseconds wait);
  // The bytes that end the stream ([DONE]) have been returned.
  bool finished() const { return finished_; }
  // Ends every choice (the client went away); a no-op for those already finished.
  void cancel();

 private:
  struct Choice {
    std::shared_ptr<RequestStream> events;
    bool done = false;
    int64_t text_offset = 0;  // completions' logprobs: bytes of the tokens sent so far
  };
  // Appends the chunks of choice c's event to out.
  void on_event(size_t c, GenerationEvent& ev, std::string& out);
  // Appends every event that is already waiting, of every open choice.
  void drain(std::string& out);

  std::vector<Choice> choices_;
  ResponseIds ids_;
  int n_per_prompt_ = 1;
  bool include_usage_ = false, logprobs_ = false;
  bool started_ = false, finished_ = false;
  size_t open_ = 0;  // choices not done
  Usage usage_;
};

}  // namespace awq::server
