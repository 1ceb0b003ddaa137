#include "runtime/scheduler.h"

#include <algorithm>
#include <limits>
#include <optional>

#include "core/error.h"
#include "runtime/generate.h"

namespace awq {

// ----------------------------------------------------------------------------------------------
// RequestStream
// ----------------------------------------------------------------------------------------------

bool RequestStream::next(GenerationEvent& ev, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!cv_.wait_for(lk, timeout, [&] { return !events_.empty(); })) return false;
  ev = std::move(events_.front());
  events_.pop_front();
  return true;
}

void RequestStream::cancel() {
  std::lock_guard<std::mutex> lk(mu_);
  cancelled_ = true;
}

bool RequestStream::cancelled() const {
  std::lock_guard<std::mutex> lk(mu_);
  return cancelled_;
}

void RequestStream::push(GenerationEvent ev) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    events_.push_back(std::move(ev));
  }
  cv_.notify_all();
}


// ----------------------------------------------------------------------------------------------
// Slots
// ----------------------------------------------------------------------------------------------

struct Scheduler::Slot {
  int index = 0;                 // the engine's slot
  bool active = false;
  std::shared_ptr<RequestStream> stream;
  GenerationRequest req;
  std::optional<Sampler> sampler;
  std::optional<StreamDecoder> decoder;
  std::vector<int32_t> history;  // prompt + generated ids (the repetition penalty's view)
  std::string pending;           // decoded text not yet sent (could start a stop string)
  std::vector<TokenLogprob> pending_logprobs;  // of the tokens since the last event (top_logprobs >= 0)
  std::vector<float> raw_logits;               // [vocab] before the sampler's penalties (logprobs)
  int32_t next_token = 0;        // sampled, to be fed at the next decode step
  int64_t generated = 0;
  // Prefill in chunks (SchedulerOptions::prefill_chunk): while `prefilling`, the slot's prompt
  // is in the engine up to `prefilled` tokens and the slot takes no decode step.
  bool prefilling = false;
  int64_t prefilled = 0;
  uint64_t admitted_seq = 0;     // admission order: older prompts are prefilled first
  // The ids whose keys and values the engine's slot holds, in position order (the prompt
  // cache); kept when the request ends, emptied where the engine failed.
  std::vector<int32_t> cached;
  int64_t reused = 0;            // prompt tokens of the request found in `cached` or copied
  // Prompt sharing: while `donor` is set, this slot waits for the donor slot (still serving the
  // request it was admitted with as donor_seq) to hold donor_len tokens of this prompt, and then
  // copies them (BatchEngine::copy_prefix) instead of prefilling them.
  Slot* donor = nullptr;
  uint64_t donor_seq = 0;
  int64_t donor_len = 0;
  std::vector<LogprobsOf> scores;  // [prefilled - 1] with echo + logprobs: token i + 1 given ..i
};

namespace {

// The options' own checks, before any engine is built for them.
const SchedulerOptions& checked(const SchedulerOptions& opt) {
  if (opt.parallel < 1) throw Error("--parallel must be at least 1 (got " + std::to_string(opt.parallel) + ")");
  if (opt.ctx < 2) throw Error("--ctx must be at least 2 positions (got " + std::to_string(opt.ctx) + ")");
  if (opt.max_queue < 0) throw Error("--max-queue must not be negative");
  if (opt.prefill_chunk < 0) throw Error("--prefill-chunk must not be negative (0: whole prompts)");
  return opt;
}

// The request wants its prompt's own log-probabilities (echo with logprobs): its prefill takes
// every position's logits, in its own passes.
bool scores_prompt(const GenerationRequest& r) { return r.echo_prompt && r.top_logprobs >= 0; }

}  // namespace

Scheduler::Scheduler(BatchEngine& engine, const Tokenizer& tok, const SchedulerOptions& opt)
    : engine_(engine), tok_(tok), opt_(opt) {
  start();
}

Scheduler::Scheduler(LlamaModel& model, const Tokenizer& tok, ThreadPool& pool, const SchedulerOptions& opt)
    : owned_engine_(std::make_unique<CpuBatchEngine>(model, pool, checked(opt).parallel, opt.ctx, opt.kv_type)),
      engine_(*owned_engine_),
      tok_(tok),
      opt_(opt) {
  start();
}

void Scheduler::start() {
  opt_.parallel = engine_.slots();
  opt_.ctx = engine_.ctx();
  checked(opt_);
  for (int i = 0; i < opt_.parallel; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->index = i;
  }
  stats_.slots = opt_.parallel;
  engine_thread_ = std::thread([this] { engine_loop(); });
}

Scheduler::~Scheduler() { shutdown(std::chrono::milliseconds(0)); }

std::shared_ptr<RequestStream> Scheduler::submit(GenerationRequest req, Refusal* why) {
  std::vector<GenerationRequest> one;
  one.push_back(std::move(req));
  auto streams = submit_all(std::move(one), why);
  return streams.empty() ? nullptr : streams[0];
}

std::vector<std::shared_ptr<RequestStream>> Scheduler::submit_all(std::vector<GenerationRequest> reqs, Refusal* why) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  {
    std::lock_guard<std::mutex> lk(mu_);
    // Room: the free slots (requests wait in the queue until the engine's next step) plus
    // max_queue requests waiting behind busy slots.
    const int64_t room = opt_.max_queue + std::max<int64_t>(0, opt_.parallel - stats_.active);
    const Refusal r = stopping_                          ? Refusal::ShuttingDown
                      : int64_t(queue_.size()) >= room ? Refusal::QueueFull
                                                       : Refusal::None;
    if (why) *why = r;
    if (r != Refusal::None) {
      stats_.rejected_total += reqs.size();
      return streams;
    }
    for (GenerationRequest& req : reqs) {
      streams.push_back(std::make_shared<RequestStream>());
      queue_.push_back(Pending{std::move(req), streams.back()});
    }
    stats_.requests_total += reqs.size();
    stats_.queued = int64_t(queue_.size());
  }
  cv_.notify_all();
  return streams;
}

void Scheduler::shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!stopping_) {
      stopping_ = true;
      deadline_ = std::chrono::steady_clock::now() + grace;
    }
  }
  cv_.notify_all();
  if (engine_thread_.joinable()) engine_thread_.join();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

// ----------------------------------------------------------------------------------------------
// The engine thread
// ----------------------------------------------------------------------------------------------

void Scheduler::engine_loop() {
  for (;;) {
    std::vector<std::pair<Slot*, Pending>> admitted;
    std::vector<Pending> dropped;  // queued when shutdown came
    bool abort_active = false, exit_after = false;
    {
      std::unique_lock<std::mutex> lk(mu_);
      const auto has_active = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->active; });
      };
      const auto has_free = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return !s->active; });
      };
      cv_.wait(lk, [&] { return stopping_ || has_active() || (!queue_.empty() && has_free()); });
      if (stopping_) {
        while (!queue_.empty()) {
          dropped.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        abort_active = std::chrono::steady_clock::now() >= deadline_;
        exit_after = abort_active || !has_active();
      }
      std::vector<Slot*> free;
      for (auto& s : slots_)
        if (!s->active) free.push_back(s.get());
      while (!queue_.empty() && !free.empty()) {
        Slot* slot = pick_slot(free, queue_.front().req);
        free.erase(std::find(free.begin(), free.end(), slot));
        admitted.emplace_back(slot, std::move(queue_.front()));
        queue_.pop_front();
      }
      stats_.queued = int64_t(queue_.size());
      stats_.active += int64_t(admitted.size());
    }
    for (Pending& p : dropped) {
      GenerationEvent ev;
      ev.kind = GenerationEvent::Kind::Done;
      ev.finish_reason = "abort";
      ev.prompt_tokens = int64_t(p.req.prompt.size());
      p.stream->push(std::move(ev));
    }
    if (abort_active)
      for (auto& s : slots_)
        if (s->active) finish(*s, "abort");
    if (exit_after) {
      std::lock_guard<std::mutex> lk(mu_);
      stats_.active = 0;
      return;
    }

    const auto t0 = std::chrono::steady_clock::now();
    for (auto& [slot, p] : admitted) admit(*slot, std::move(p));
    prefill_step();
    decode_active();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::lock_guard<std::mutex> lk(mu_);
    stats_.busy_seconds_total += dt;
    stats_.active = std::count_if(slots_.begin(), slots_.end(), [](const auto& s) { return s->active; });
  }
}

namespace {

// How many of req's prompt tokens `held` starts with, at most all but the last (whose logits
// start the completion).
int64_t shared_prefix(const std::vector<int32_t>& held, const GenerationRequest& req) {
  if (req.prompt.empty()) return 0;
  const auto end = held.begin() + int64_t(std::min(held.size(), req.prompt.size() - 1));
  return std::mismatch(held.begin(), end, req.prompt.begin()).first - held.begin();
}

// Prompt tokens a copy from another slot must save: one from a slot that holds them now (a copy
// costs little, but a BOS or a few common words are not worth one), and one from a slot still
// prefilling them, for which the request waits a step rather than prefill them in the same pass.
constexpr int64_t kMinCopyTokens = 16;
constexpr int64_t kMinWaitTokens = 32;

}  // namespace

bool Scheduler::may_reuse(const GenerationRequest& req) const {
  return opt_.cache_prompt && req.cache_prompt && !scores_prompt(req);
}

int64_t Scheduler::reusable(const Slot& slot, const GenerationRequest& req) const {
  return may_reuse(req) ? shared_prefix(slot.cached, req) : 0;
}

void Scheduler::find_donor(Slot& slot) {
  slot.donor = nullptr;
  if (!may_reuse(slot.req)) return;
  Slot *now = nullptr, *later = nullptr;  // the most of the prompt held now; once prefilled
  int64_t now_len = slot.reused, later_len = slot.reused;
  for (auto& s : slots_) {
    Slot& d = *s;
    if (&d == &slot) continue;
    const int64_t held = shared_prefix(d.cached, slot.req);
    // A slot still prefilling its prompt will hold that prompt's prefix (cached is a part of it).
    const int64_t coming = d.active && d.prefilling ? shared_prefix(d.req.prompt, slot.req) : held;
    if (held > now_len) now = &d, now_len = held;
    // Of equals, one that is not waiting for a donor itself.
    if (coming > later_len || (later && coming == later_len && later->donor && !d.donor)) later = &d, later_len = coming;
  }
  // Copying what is there costs next to nothing; waiting costs the request a step.
  const bool copy_now = now && now_len - slot.reused >= kMinCopyTokens;
  const int64_t base = copy_now ? now_len : slot.reused;
  Slot* d = later && later_len - base >= kMinWaitTokens ? later : copy_now ? now : nullptr;
  if (!d) return;
  slot.donor = d;
  slot.donor_seq = d->admitted_seq;
  slot.donor_len = d == later ? later_len : now_len;
  take_from_donor(slot);
}

void Scheduler::take_from_donor(Slot& slot) {
  Slot& d = *slot.donor;
  // d.cached mirrors d's cache whatever happened to d since (it failed: empty; it serves another
  // request now: truncated to that prompt's prefix), so `have` is always there to copy.
  const int64_t have = std::min(shared_prefix(d.cached, slot.req), slot.donor_len);
  const bool still_coming = d.active && d.prefilling && d.admitted_seq == slot.donor_seq;
  if (have < slot.donor_len && still_coming) return;  // wait for d's next piece
  slot.donor = nullptr;
  if (have <= slot.reused) return;
  try {
    engine_.copy_prefix(d.index, slot.index, have);
    slot.cached.assign(d.cached.begin(), d.cached.begin() + have);
  } catch (const std::exception&) {  // nothing to lose: prefill the prompt whole
    engine_.clear(slot.index);
    slot.cached.clear();
  }
  slot.prefilled = slot.reused = int64_t(slot.cached.size());
}

Scheduler::Slot* Scheduler::pick_slot(const std::vector<Slot*>& free, const GenerationRequest& req) const {
  Slot* lru = free.front();
  Slot* best = nullptr;  // the longest reuse among slots whose cache is mostly a prefix of the prompt
  int64_t best_len = 0;
  for (Slot* s : free) {
    if (s->admitted_seq < lru->admitted_seq) lru = s;
    const int64_t len = reusable(*s, req);
    // A slot whose cache the prompt would mostly discard (it shares only a start, such as the
    // BOS or a system prompt) is not taken for that: it may hold another conversation.
    if (len == 0 || 2 * len < int64_t(s->cached.size())) continue;
    if (!best || len > best_len || (len == best_len && s->admitted_seq < best->admitted_seq)) best = s, best_len = len;
  }
  return best ? best : lru;
}

void Scheduler::admit(Slot& slot, Pending p) {
  if (p.stream->cancelled()) {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.cancelled_total;
    return;
  }
  slot.active = true;
  slot.stream = std::move(p.stream);
  slot.req = std::move(p.req);
  slot.sampler.emplace(slot.req.sampler);
  slot.decoder.emplace(tok_, /*skip_special=*/true);
  slot.history = slot.req.prompt;
  slot.pending.clear();
  slot.pending_logprobs.clear();
  slot.generated = 0;
  slot.scores.clear();
  slot.prefilled = 0;
  slot.prefilling = true;
  slot.admitted_seq = next_admission_++;
  // The prompt cache: keep what the slot holds of the prompt, where the engine can.
  const int64_t keep = reusable(slot, slot.req);
  if (keep > 0 && engine_.n_past(slot.index) == int64_t(slot.cached.size())) {
    engine_.truncate(slot.index, keep);
    slot.cached.resize(size_t(keep));
  } else {
    engine_.clear(slot.index);
    slot.cached.clear();
  }
  slot.prefilled = slot.reused = int64_t(slot.cached.size());
  if (int64_t(slot.req.prompt.size()) + (slot.req.max_tokens > 0 ? 1 : 0) > engine_.ctx())
    return fail(slot, "the prompt is " + std::to_string(slot.req.prompt.size()) + " tokens but a slot holds " +
                          std::to_string(engine_.ctx()) + " positions");
  find_donor(slot);  // another slot holding (or prefilling) more of the prompt
}

void Scheduler::fail(Slot& slot, const std::string& error) {
  GenerationEvent ev;
  ev.kind = GenerationEvent::Kind::Error;
  ev.error = error;
  slot.stream->push(std::move(ev));
  slot.active = false;
  slot.prefilling = false;
  slot.donor = nullptr;
  slot.stream.reset();
  slot.cached.clear();
  engine_.clear(slot.index);
}

bool Scheduler::drop_if_cancelled(Slot& slot) {
  if (!slot.stream->cancelled()) return false;
  slot.active = slot.prefilling = false;
  slot.donor = nullptr;
  slot.stream.reset();
  std::lock_guard<std::mutex> lk(mu_);
  ++stats_.cancelled_total;
  return true;
}

std::vector<Scheduler::Slot*> Scheduler::prefilling_slots() const {
  std::vector<Slot*> order;
  for (auto& s : slots_)
    if (s->active && s->prefilling) order.push_back(s.get());
  std::sort(order.begin(), order.end(), [](const Slot* a, const Slot* b) { return a->admitted_seq < b->admitted_seq; });
  return order;
}

void Scheduler::take_from_donors() {
  for (Slot* slot : prefilling_slots())  // oldest first: a donor that waited itself has copied by then
    if (slot->donor && !drop_if_cancelled(*slot)) take_from_donor(*slot);
}

void Scheduler::prefill_step() {
  take_from_donors();
  std::vector<Slot*> order = prefilling_slots();
  // A slot that still waits for its donor prefills nothing this step.
  order.erase(std::remove_if(order.begin(), order.end(), [](const Slot* s) { return s->donor != nullptr; }), order.end());
  int64_t budget = opt_.prefill_chunk > 0 ? opt_.prefill_chunk : std::numeric_limits<int64_t>::max();
  std::vector<Slot*> packed;  // pieces for one shared pass (prefill_packed), in order
  std::vector<int64_t> packed_n;
  for (Slot* slot : order) {
    if (budget <= 0) break;
    if (drop_if_cancelled(*slot)) continue;  // the client went away while its prompt was prefilled
    const int64_t n = std::min(budget, int64_t(slot->req.prompt.size()) - slot->prefilled);
    budget -= n;
    if (!scores_prompt(slot->req)) {  // scoring takes all-position logits
      packed.push_back(slot);
      packed_n.push_back(n);
      continue;
    }
    prefill_one(*slot, n);
  }
  if (!(opt_.pack_prefill && packed.size() > 1 && prefill_packed(packed, packed_n)))
    for (size_t i = 0; i < packed.size(); ++i) prefill_one(*packed[i], packed_n[i]);
  // A donor whose prompt went in just now: its waiters copy it now rather than a step later
  // (when it may have finished and taken another request, truncating its cache).
  take_from_donors();
}

void Scheduler::prefill_one(Slot& slot, int64_t n) {
  try {
    std::vector<float> logits;  // [vocab] of the prompt's last position, once it is in
    if (prefill_chunk(slot, n, logits)) prefill_done(slot, logits);
  } catch (const std::exception& e) {
    fail(slot, e.what());
  }
}

bool Scheduler::prefill_packed(const std::vector<Slot*>& pieces, const std::vector<int64_t>& n) {
  std::vector<int> slot_ids;
  std::vector<const int32_t*> tokens;
  for (const Slot* s : pieces) {
    slot_ids.push_back(s->index);
    tokens.push_back(s->req.prompt.data() + s->prefilled);
  }
  std::vector<float> logits;  // [pieces, vocab]
  try {
    if (!engine_.prefill_many(slot_ids.data(), tokens.data(), n.data(), int(pieces.size()), logits)) return false;
  } catch (const std::exception&) {
    return false;  // nothing ran: prefill_one each, so that only the request at fault fails
  }
  const int64_t vocab = engine_.config().vocab_size;
  for (size_t i = 0; i < pieces.size(); ++i) {
    Slot& s = *pieces[i];
    s.cached.insert(s.cached.end(), tokens[i], tokens[i] + n[i]);
    s.prefilled += n[i];
    if (s.prefilled < int64_t(s.req.prompt.size())) continue;
    std::vector<float> last(logits.begin() + int64_t(i) * vocab, logits.begin() + int64_t(i + 1) * vocab);
    prefill_done(s, last);
  }
  return true;
}

bool Scheduler::prefill_chunk(Slot& slot, int64_t n, std::vector<float>& logits) {
  const std::vector<int32_t>& prompt = slot.req.prompt;
  const int64_t total = int64_t(prompt.size()), vocab = engine_.config().vocab_size;
  const bool score = scores_prompt(slot.req);
  // Scoring takes all-position logits, [len, vocab], in pieces of kScoreRows: not [n, vocab].
  constexpr int64_t kScoreRows = 128;
  std::vector<float> all;
  for (int64_t done = 0; done < n;) {
    const int64_t at = slot.prefilled, len = score ? std::min(kScoreRows, n - done) : n - done;
    engine_.prefill(slot.index, prompt.data() + at, len, score, score ? all : logits);
    slot.cached.insert(slot.cached.end(), prompt.begin() + at, prompt.begin() + at + len);
    if (score) {
      for (int64_t r = 0; r < len && at + r + 1 < total; ++r)
        slot.scores.push_back(logprobs_of(all.data() + r * vocab, vocab, prompt[size_t(at + r + 1)], slot.req.top_logprobs));
      if (at + len == total) logits.assign(all.end() - vocab, all.end());
    }
    slot.prefilled += len;
    done += len;
  }
  return slot.prefilled == total;
}

void Scheduler::prefill_done(Slot& slot, std::vector<float>& logits) {
  slot.prefilling = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.prompt_tokens_total += slot.req.prompt.size();
    stats_.prompt_tokens_cached_total += uint64_t(slot.reused);
  }
  echo_prompt(slot);
  if (slot.req.max_tokens == 0) {  // the prompt (echoed) alone: nothing is sampled
    slot.pending = slot.decoder->flush();
    return finish(slot, "length");
  }
  on_logits(slot, logits.data());
}

void Scheduler::echo_prompt(Slot& slot) {
  const std::vector<int32_t>& prompt = slot.req.prompt;
  const int64_t n = int64_t(prompt.size());
  // The decoder sees the prompt too, so the completion's first piece carries its leading space.
  if (!slot.req.echo_prompt) {
    for (int32_t id : prompt) slot.decoder->push(id);
    return;
  }
  const bool score = slot.req.top_logprobs >= 0;
  GenerationEvent ev;
  for (int64_t i = 0; i < n; ++i) {
    TokenLogprob t;
    if (score) {
      if (i == 0) {
        t.logprob = std::numeric_limits<float>::quiet_NaN();
      } else {
        t.logprob = slot.scores[size_t(i - 1)].chosen;
        t.top = alternatives(*slot.decoder, slot.scores[size_t(i - 1)]);
      }
    }
    t.token = slot.decoder->push(prompt[size_t(i)]);
    ev.text += t.token;
    if (score) ev.logprobs.push_back(std::move(t));
  }
  slot.stream->push(std::move(ev));
  slot.scores.clear();
}

std::vector<std::pair<std::string, float>> Scheduler::alternatives(const StreamDecoder& at, const LogprobsOf& lp) const {
  std::vector<std::pair<std::string, float>> top;
  for (const auto& [id, l] : lp.top) {
    StreamDecoder alt = at;  // the alternative's text in the same context
    std::string piece = alt.push(id);
    if (piece.empty()) piece = tok_.id_to_token(id);  // an unfinished UTF-8 sequence (or special)
    top.emplace_back(std::move(piece), l);
  }
  return top;
}

void Scheduler::decode_active() {
  std::vector<Slot*> batch;
  for (auto& s : slots_) {
    if (!s->active || s->prefilling || drop_if_cancelled(*s)) continue;
    batch.push_back(s.get());
  }
  if (batch.empty()) return;
  std::vector<int32_t> tokens;  // [B]
  std::vector<int> indices;     // [B] the engine's slots
  for (Slot* s : batch) {
    tokens.push_back(s->next_token);
    indices.push_back(s->index);
  }
  // When every request of the step takes the plain argmax, the engine may take it itself.
  const bool argmax_only = std::all_of(batch.begin(), batch.end(), [](const Slot* s) {
    return is_plain_greedy(s->req.sampler) && s->req.top_logprobs < 0;
  });
  std::vector<float> logits;  // [B, vocab]
  std::vector<int32_t> next(batch.size());  // [B] when the engine took the argmax
  bool chosen = false;
  try {
    chosen = argmax_only && engine_.decode_argmax(indices.data(), tokens.data(), int(batch.size()), next.data());
    if (!chosen) engine_.decode(indices.data(), tokens.data(), int(batch.size()), logits);
  } catch (const std::exception& e) {
    fail_all_active(e.what());
    return;
  }
  for (size_t b = 0; b < batch.size(); ++b) batch[b]->cached.push_back(tokens[b]);
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.decode_steps_total;
  }
  const int64_t vocab = engine_.config().vocab_size;
  for (size_t b = 0; b < batch.size(); ++b) {
    if (chosen)
      on_token(*batch[b], next[b]);
    else
      on_logits(*batch[b], logits.data() + int64_t(b) * vocab);
  }
}

void Scheduler::on_logits(Slot& slot, float* logits) {
  const int64_t vocab = engine_.config().vocab_size;
  if (slot.req.top_logprobs >= 0) slot.raw_logits.assign(logits, logits + vocab);  // the sampler edits logits
  on_token(slot, slot.sampler->sample(logits, vocab, slot.history));
}

void Scheduler::on_token(Slot& slot, int32_t tok) {
  const int64_t vocab = engine_.config().vocab_size;
  const bool want_logprobs = slot.req.top_logprobs >= 0;
  const auto& eos = tok_.eos_ids();
  const auto& ids = slot.req.stop_ids;
  if ((slot.req.stop_at_eos && std::find(eos.begin(), eos.end(), tok) != eos.end()) ||
      std::find(ids.begin(), ids.end(), tok) != ids.end()) {
    slot.pending += slot.decoder->flush();
    return finish(slot, "stop");
  }
  slot.history.push_back(tok);
  ++slot.generated;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.generated_tokens_total;
  }
  if (want_logprobs) {
    const LogprobsOf lp = logprobs_of(slot.raw_logits.data(), vocab, tok, slot.req.top_logprobs);
    TokenLogprob t;
    t.logprob = lp.chosen;
    t.top = alternatives(*slot.decoder, lp);
    t.token = slot.decoder->push(tok);
    slot.pending += t.token;
    slot.pending_logprobs.push_back(std::move(t));
  } else {
    slot.pending += slot.decoder->push(tok);
  }
  const bool at_limit = slot.generated >= slot.req.max_tokens || engine_.n_past(slot.index) >= engine_.ctx();
  if (at_limit) slot.pending += slot.decoder->flush();
  // A stop string ends the text before it.
  size_t cut = std::string::npos;
  for (const std::string& s : slot.req.stop) cut = std::min(cut, slot.pending.find(s));
  if (cut != std::string::npos) {
    slot.pending.resize(cut);
    return finish(slot, "stop");
  }
  if (at_limit) return finish(slot, "length");
  const size_t hold = stop_holdback(slot.pending, slot.req.stop);
  if (slot.pending.size() > hold) {
    GenerationEvent ev;
    ev.text = slot.pending.substr(0, slot.pending.size() - hold);
    slot.pending.erase(0, slot.pending.size() - hold);
    ev.logprobs = std::move(slot.pending_logprobs);  // tokens whose text is (partly) held back too
    slot.pending_logprobs.clear();
    slot.stream->push(std::move(ev));
  }
  slot.next_token = tok;
}

void Scheduler::finish(Slot& slot, const std::string& reason) {
  if (!slot.pending.empty() || !slot.pending_logprobs.empty()) {
    GenerationEvent ev;
    ev.text = std::move(slot.pending);
    ev.logprobs = std::move(slot.pending_logprobs);
    slot.stream->push(std::move(ev));
    slot.pending.clear();
    slot.pending_logprobs.clear();
  }
  GenerationEvent done;
  done.kind = GenerationEvent::Kind::Done;
  done.finish_reason = reason;
  done.prompt_tokens = int64_t(slot.req.prompt.size());
  done.completion_tokens = slot.generated;
  done.cached_tokens = slot.reused;
  slot.stream->push(std::move(done));
  slot.active = false;
  slot.stream.reset();
}

void Scheduler::fail_all_active(const std::string& error) {
  for (auto& s : slots_)
    if (s->active) fail(*s, error);
}

}  // namespace awq
