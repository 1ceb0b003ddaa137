#include "server/metrics.h"

#include <cstdio>

namespace awq::server {

namespace {

void metric(std::string& out, const char* name, const char* type, const char* help, double value) {
  char num[64];
  std::snprintf(num, sizeof(num), "%.17g", value);
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out += num;
  out += '\n';
}

}  // namespace

std::string prometheus_text(const SchedulerStats& s, const std::map<int, uint64_t>& responses_by_code) {
  std::string out;
  metric(out, "awq_requests_total", "counter", "Completion requests accepted into the queue.", double(s.requests_total));
  metric(out, "awq_requests_rejected_total", "counter", "Completion requests refused with 503 (queue full or shutting down).", double(s.rejected_total));
  metric(out, "awq_requests_cancelled_total", "counter", "Requests dropped because their client disconnected.", double(s.cancelled_total));
  metric(out, "awq_prompt_tokens_total", "counter", "Prompt tokens of the requests whose prompt is in (cached ones included).",
         double(s.prompt_tokens_total));
  metric(out, "awq_prompt_tokens_cached_total", "counter", "Prompt tokens found in a slot's prompt cache instead of prefilled.",
         double(s.prompt_tokens_cached_total));
  metric(out, "awq_generated_tokens_total", "counter", "Tokens generated.", double(s.generated_tokens_total));
  metric(out, "awq_decode_steps_total", "counter", "Batched decode steps run.", double(s.decode_steps_total));
  metric(out, "awq_engine_busy_seconds_total", "counter", "Seconds the engine spent in prefill and decode.", s.busy_seconds_total);
  metric(out, "awq_generation_tokens_per_second", "gauge", "Generated tokens per busy engine second, since start.",
         s.busy_seconds_total > 0 ? double(s.generated_tokens_total) / s.busy_seconds_total : 0.0);
  metric(out, "awq_queue_length", "gauge", "Requests waiting for a slot.", double(s.queued));
  metric(out, "awq_active_requests", "gauge", "Requests holding a KV-cache slot.", double(s.active));
  metric(out, "awq_slots", "gauge", "KV-cache slots (--parallel).", double(s.slots));
  out += "# HELP awq_http_responses_total HTTP responses sent, by status code.\n";
  out += "# TYPE awq_http_responses_total counter\n";
  for (const auto& [code, n] : responses_by_code)
    out += "awq_http_responses_total{code=\"" + std::to_string(code) + "\"} " + std::to_string(n) + "\n";
  return out;
}

}  // namespace awq::server
