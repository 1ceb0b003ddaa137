// GET /metrics: the scheduler's counters and gauges in the Prometheus text format (0.0.4).
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "runtime/scheduler.h"

namespace awq::server {

// responses_by_code: HTTP responses sent so far, by status code.
std::string prometheus_text(const SchedulerStats& s, const std::map<int, uint64_t>& responses_by_code);

}  // namespace awq::server
