// Continuous batching for the server: one engine thread drives a BatchEngine
// (runtime/batch_engine.h: the model and a fixed set of KV-cache slots, --parallel, on the CPU
// or the GPU); HTTP threads submit requests to a bounded queue and read their tokens from a
// per-request RequestStream. Every engine step admits waiting requests into free slots,
// prefills up to prefill_chunk of their prompt tokens (oldest first; a prompt may take several
// steps), then runs one decode step for all requests past their prompt, samples each with its own
// sampler, decodes text incrementally, applies stop strings / max_tokens / context limits, and
// drops requests whose client went away. A slot keeps its keys and values after its request
// ends (the prompt cache): a request whose prompt starts with what a free slot holds, as the
// next turn of a chat starts with the conversation so far, goes to that slot and prefills only
// the rest.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "model/llama_model.h"
#include "runtime/batch_engine.h"
#include "runtime/sampler.h"
#include "runtime/token_logprobs.h"
#include "tokenizer/tokenizer.h"

namespace awq {

struct GenerationRequest {
  std::vector<int32_t> prompt;     // [n] ids, 1 <= n < ctx (n <= ctx when max_tokens is 0), each
                                   // inside the vocabulary
  int64_t max_tokens = 16;         // >= 1, bounded by the slot's context; or 0: nothing is
                                   // generated (with echo_prompt: the prompt alone, scored)
  SamplerParams sampler;           // temperature <= 0: greedy
  std::vector<std::string> stop;   // non-empty stop strings; the text ends before the first
  std::vector<int32_t> stop_ids;   // tokens that end the text (not shown), whatever stop_at_eos
  bool stop_at_eos = true;
  int top_logprobs = -1;           // >= 0: each token's log-probability and this many
                                   // alternatives (<= kMaxTopLogprobs) come with the text
  // The first Text event is the prompt as the decoder yields it (the API's "echo"), with its
  // tokens scored where top_logprobs >= 0 (the first token's logprob is NaN: nothing precedes it).
  bool echo_prompt = false;
  // May start from a slot's cached prefix (the API's "cache_prompt", as llama.cpp's server;
  // SchedulerOptions::cache_prompt must allow it too). Requests that score their prompt
  // (echo_prompt with top_logprobs) always prefill it whole.
  bool cache_prompt = true;
};

// What the engine sends to the request's reader, in order: Text*, then one Done or Error.
struct GenerationEvent {
  enum class Kind { Text, Done, Error };
  Kind kind = Kind::Text;
  std::string text;           // Text: the next piece of the completion (complete UTF-8)
  // Text, where the request asked (top_logprobs >= 0): one entry per token the piece holds, the
  // tokens in order; a stop string can cut the text inside the last ones.
  std::vector<TokenLogprob> logprobs;
  std::string finish_reason;  // Done: "stop" (EOS or a stop string), "length", "abort" (shutdown)
  std::string error;          // Error: what went wrong
  int64_t prompt_tokens = 0, completion_tokens = 0;  // Done
  int64_t cached_tokens = 0;  // Done: prompt tokens found in the slot's cache, not prefilled
};

// One request's channel between the engine (writer) and its HTTP thread (reader).
class RequestStream {
 public:
  // The next event, waiting up to `timeout`; false when none came in time.
  bool next(GenerationEvent& ev, std::chrono::milliseconds timeout);
  // The reader is gone (client disconnected): the engine frees the slot at its next step.
  void cancel();
  bool cancelled() const;

  void push(GenerationEvent ev);  // engine side

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<GenerationEvent> events_;
  bool cancelled_ = false;
};

struct SchedulerOptions {
  int parallel = 4;        // KV-cache slots = requests decoded together
  int64_t ctx = 2048;      // positions per slot (prompt + completion)
  int max_queue = 64;      // requests waiting for a slot before submit() refuses
  KvType kv_type = KvType::F16;  // element type of every slot's KV cache (CPU engine)
  // Prompt tokens prefilled per engine step, over the admitted prompts oldest first; 0: each
  // prompt whole at admission. Between two chunks the running requests decode one token each,
  // so a long prompt delays their next token by one chunk's time, not by its whole prefill.
  int64_t prefill_chunk = 64;
  // The pieces of one step's prefill in shared forward passes where the engine can
  // (BatchEngine::prefill_many: the GPU); false: one prefill per request, as before session 33
  // (`awq serve` reads AWQ_SERVE_PACK_PREFILL=0 for it, to compare).
  bool pack_prefill = true;
  // The prompt cache: a free slot's keys and values are kept for the next request that starts
  // with the same tokens (`awq serve --no-cache-prompt` turns it off). The cached keys and values
  // are those the slot computed. On the CPU a prompt's positions have the whole prefill's bits
  // whatever pieces they went in (CpuBatchEngine's rows do not depend on the row count); the
  // positions of tokens the slot generated (a chat's previous reply, sent back) have the decode
  // step's, whose 1-row attention sums in another order than the prefill's, so there the logits
  // can differ from a run without the cache in the last bits. On the GPU the kernels follow the
  // row count, so, as under load, a near-tied greedy pick can differ.
  bool cache_prompt = true;
};

struct SchedulerStats {
  int64_t slots = 0, active = 0, queued = 0;
  uint64_t requests_total = 0;        // accepted by submit()
  uint64_t rejected_total = 0;        // refused: queue full or shutting down
  uint64_t cancelled_total = 0;       // dropped because the client went away
  uint64_t prompt_tokens_total = 0;   // of the prompts in the engine (cached ones included)
  uint64_t prompt_tokens_cached_total = 0;  // of them, found in a slot's cache, not prefilled
  uint64_t generated_tokens_total = 0;
  uint64_t decode_steps_total = 0;
  double busy_seconds_total = 0;      // engine time in prefill + decode
};

class Scheduler {
 public:
  // Drives `engine` (its slots and context; opt.parallel and opt.ctx are taken from it) with
  // opt.max_queue. The engine and tokenizer must outlive the scheduler; the engine thread
  // starts here (throws awq::Error for bad options).
  Scheduler(BatchEngine& engine, const Tokenizer& tok, const SchedulerOptions& opt);
  // The same on a CPU engine of opt.parallel slots x opt.ctx positions, which the scheduler
  // owns; the model, tokenizer and pool must outlive it.
  Scheduler(LlamaModel& model, const Tokenizer& tok, ThreadPool& pool, const SchedulerOptions& opt);
  ~Scheduler();  // shutdown(0)
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Refusal { None, QueueFull, ShuttingDown };
  // The request's stream, or nullptr with `why` set when it cannot be queued.
  std::shared_ptr<RequestStream> submit(GenerationRequest req, Refusal* why = nullptr);
  // Several requests queued together (the choices of one API request): all of them, their
  // streams in order, or none (empty, `why` set). They are taken while the queue has a place
  // (the free slots + max_queue), so one group may run past max_queue by its size - 1 and a
  // group larger than the whole room still runs on an idle server, its requests waiting their turn.
  std::vector<std::shared_ptr<RequestStream>> submit_all(std::vector<GenerationRequest> reqs, Refusal* why = nullptr);

  // Stops accepting requests and drops the queued ones (finish "abort"); active requests run
  // on for up to `grace`, then end with finish "abort". Joins the engine thread. Idempotent.
  void shutdown(std::chrono::milliseconds grace);

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return opt_; }

 private:
  struct Slot;
  struct Pending {
    GenerationRequest req;
    std::shared_ptr<RequestStream> stream;
  };

  void engine_loop();
  // The free slot for req: of those whose cache is at least half a prefix of its prompt (the
  // conversation it continues), the one that holds the longest prefix; else the least recently
  // admitted, a never-used slot first (so the caches of recent conversations are kept longest).
  // Either way the request then reuses what the slot holds of its prompt.
  Slot* pick_slot(const std::vector<Slot*>& free, const GenerationRequest& req) const;
  // Whether req may start from cached keys and values (SchedulerOptions::cache_prompt and its
  // own cache_prompt, and it does not score its prompt).
  bool may_reuse(const GenerationRequest& req) const;
  // Prompt tokens of req that the slot's cache holds and the request may take from it (at most
  // all but the last, whose logits start the completion).
  int64_t reusable(const Slot& slot, const GenerationRequest& req) const;
  // Prompt sharing: the other slot holding the most of the slot's prompt, at least
  // kMinCopyTokens beyond what its own cache gave, is copied from at once; a slot still
  // prefilling at least kMinWaitTokens more of it is waited for instead (the slot prefills
  // nothing until take_from_donor finds the tokens there, at a later step). So n choices of one
  // prompt, or requests that share a long prefix such as a system prompt, prefill it once.
  void find_donor(Slot& slot);
  void take_from_donor(Slot& slot);
  void take_from_donors();  // take_from_donor for every waiting slot
  std::vector<Slot*> prefilling_slots() const;  // oldest admission first
  // Takes the request into the slot (its prompt to be prefilled past what the slot's cache
  // holds of it), or fails it (too long).
  void admit(Slot& slot, Pending p);
  // Sends the request an Error event and frees the slot (its cache emptied: the engine may
  // have stopped midway).
  void fail(Slot& slot, const std::string& error);
  // Frees the slot when its client went away (the stream was cancelled); true then.
  bool drop_if_cancelled(Slot& slot);
  // Up to opt_.prefill_chunk prompt tokens of the prefilling slots, oldest admission first;
  // a slot whose prompt is then complete samples its first token (prefill_done). Where the
  // engine can (the GPU), the pieces of the slots that do not score their prompt run in shared
  // passes (prefill_packed).
  void prefill_step();
  // The slot's next n prompt tokens into the engine (scored where echo + logprobs ask); true
  // when the prompt is complete, logits then [vocab] of its last position.
  bool prefill_chunk(Slot& slot, int64_t n, std::vector<float>& logits);
  // n of the slot's prompt tokens (prefill_chunk, then prefill_done when the prompt is in), or
  // fails the request.
  void prefill_one(Slot& slot, int64_t n);
  // The pieces (n[i] tokens of pieces[i]) in shared forward passes (BatchEngine::prefill_many);
  // false where the engine has no such path or refused them (then nothing ran).
  bool prefill_packed(const std::vector<Slot*>& pieces, const std::vector<int64_t>& n);
  void prefill_done(Slot& slot, std::vector<float>& logits);
  // The prompt through the slot's decoder; with echo_prompt also as the first Text event
  // (scored from slot.scores where top_logprobs >= 0).
  void echo_prompt(Slot& slot);
  void decode_active();
  // Samples from logits: [vocab] for the slot, then on_token.
  void on_logits(Slot& slot, float* logits);
  // The slot's next token: emits text / finishes the request (logprobs from slot.raw_logits).
  void on_token(Slot& slot, int32_t tok);
  void finish(Slot& slot, const std::string& reason);
  // The text of lp.top's tokens, each decoded after the context `at` holds.
  std::vector<std::pair<std::string, float>> alternatives(const StreamDecoder& at, const LogprobsOf& lp) const;
  void fail_all_active(const std::string& error);

  void start();  // checks the options, makes the slots, starts the engine thread

  std::unique_ptr<BatchEngine> owned_engine_;  // the CPU engine of the second constructor
  BatchEngine& engine_;                        // engine thread only (after start)
  const Tokenizer& tok_;
  SchedulerOptions opt_;
  std::vector<std::unique_ptr<Slot>> slots_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  uint64_t next_admission_ = 1;  // engine thread only; a never-used slot has admitted_seq 0
  std::chrono::steady_clock::time_point deadline_;
  SchedulerStats stats_;
  std::thread engine_thread_;
};


}  // namespace awq
