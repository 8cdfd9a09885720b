#include "server/metrics.h"

#include <algorithm>
#include <charconv>

#include "base/run_state.h"
#include "server/store/store.h"

namespace boxcar::server {

namespace {

// The shortest text that reads back as the same double: 0.1, not 0.10000000000000001.
std::string number(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

// Label values escape backslash, double quote and newline.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n";
  out += std::string("# TYPE ") + name + " " + type + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(const std::string& name, std::string& out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{le=\"" + number(bounds_[i]) + "\"} " + std::to_string(cumulative) +
           "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + number(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : step_duration_({0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600}) {}

void Metrics::count_http_response(unsigned code) {
  std::lock_guard lock(mu_);
  ++http_responses_[code];
}

void Metrics::count_webhook(const std::string& provider, const std::string& result) {
  std::lock_guard lock(mu_);
  ++webhooks_[{provider, result}];
}

void Metrics::observe_step_duration(double seconds) {
  std::lock_guard lock(mu_);
  step_duration_.observe(seconds);
}

void Metrics::count_jobs_deleted(int64_t n) {
  std::lock_guard lock(mu_);
  jobs_deleted_ += static_cast<uint64_t>(n);
}

void Metrics::count_follower_refused(const std::string& scope) {
  std::lock_guard lock(mu_);
  ++followers_refused_[scope];
}

void Metrics::set_egress_refused(int64_t job, const std::string& step, int64_t refused) {
  if (refused <= 0) return;
  std::lock_guard lock(mu_);
  auto& steps = egress_refused_[job];
  // Step names come from the agent: a job keeps at most as many as a pipeline may have steps;
  // past that, they are counted together.
  if (steps.size() >= kEgressStepsPerJob && !steps.count(step)) {
    steps[""] += static_cast<uint64_t>(refused);
  } else {
    steps[step] = static_cast<uint64_t>(refused);
  }
  while (egress_refused_.size() > kEgressJobs) {
    for (const auto& [s, n] : egress_refused_.begin()->second) egress_refused_evicted_ += n;
    egress_refused_.erase(egress_refused_.begin());
  }
}

void Metrics::count_forge_status(const std::string& forge, const std::string& result) {
  std::lock_guard lock(mu_);
  ++forge_statuses_[{forge, result}];
}

void Metrics::set_forge_statuses_undelivered(int64_t n) {
  std::lock_guard lock(mu_);
  forge_statuses_undelivered_ = n;
}

uint64_t Metrics::webhook_count(const std::string& provider, const std::string& result) const {
  std::lock_guard lock(mu_);
  auto it = webhooks_.find({provider, result});
  return it == webhooks_.end() ? 0 : it->second;
}

std::string Metrics::render(const std::map<std::string, int64_t>& jobs_by_state,
                            size_t claims_waiting, size_t log_followers) const {
  std::string out;
  family(out, "boxcar_jobs", "gauge", "Jobs in the store by state.");
  for (const char* state : kJobStates) {
    auto it = jobs_by_state.find(state);
    int64_t n = it == jobs_by_state.end() ? 0 : it->second;
    out += std::string("boxcar_jobs{state=\"") + state + "\"} " + std::to_string(n) + "\n";
  }
  family(out, "boxcar_queue_depth", "gauge", "Jobs waiting for an agent.");
  auto queued = jobs_by_state.find(to_string(JobState::queued));
  out += "boxcar_queue_depth " +
         std::to_string(queued == jobs_by_state.end() ? 0 : queued->second) + "\n";
  family(out, "boxcar_agent_claims_waiting", "gauge",
         "Agents' claims held open until a job comes (idle agent slots).");
  out += "boxcar_agent_claims_waiting " + std::to_string(claims_waiting) + "\n";
  family(out, "boxcar_log_followers", "gauge",
         "Live log streams held open (API follow=1 and web UI pages), against their caps.");
  out += "boxcar_log_followers " + std::to_string(log_followers) + "\n";

  std::lock_guard lock(mu_);
  family(out, "boxcar_webhook_deliveries_total", "counter",
         "Webhook deliveries by provider and result.");
  for (const auto& [key, n] : webhooks_) {
    out += "boxcar_webhook_deliveries_total{provider=\"" + label(key.first) + "\",result=\"" +
           label(key.second) + "\"} " + std::to_string(n) + "\n";
  }
  family(out, "boxcar_step_duration_seconds", "histogram",
         "Duration of finished steps, as reported by agents.");
  step_duration_.render("boxcar_step_duration_seconds", out);
  family(out, "boxcar_jobs_deleted_total", "counter",
         "Finished jobs deleted by retention (--job-retention).");
  out += "boxcar_jobs_deleted_total " + std::to_string(jobs_deleted_) + "\n";
  family(out, "boxcar_log_followers_refused_total", "counter",
         "Live log followers refused (429), by the cap they hit: job or client.");
  for (const auto& [scope, n] : followers_refused_) {
    out += "boxcar_log_followers_refused_total{cap=\"" + label(scope) + "\"} " +
           std::to_string(n) + "\n";
  }
  family(out, "boxcar_egress_refused_total", "counter",
         "Connections from steps that their job's egress policy refused, every job together.");
  uint64_t refused_total = egress_refused_evicted_;
  for (const auto& [job, steps] : egress_refused_) {
    for (const auto& [s, n] : steps) refused_total += n;
  }
  out += "boxcar_egress_refused_total " + std::to_string(refused_total) + "\n";
  family(out, "boxcar_job_egress_refused_total", "counter",
         "Connections the egress policy refused, per job (the latest jobs that had any).");
  for (const auto& [job, steps] : egress_refused_) {
    uint64_t n = 0;
    for (const auto& [s, c] : steps) n += c;
    out += "boxcar_job_egress_refused_total{job=\"" + std::to_string(job) + "\"} " + std::to_string(n) + "\n";
  }
  family(out, "boxcar_forge_status_deliveries_total", "counter",
         "Commit status deliveries to forges, by forge and result (delivered, retry, failed).");
  for (const auto& [key, n] : forge_statuses_) {
    out += "boxcar_forge_status_deliveries_total{forge=\"" + label(key.first) + "\",result=\"" +
           label(key.second) + "\"} " + std::to_string(n) + "\n";
  }
  family(out, "boxcar_forge_statuses_undelivered", "gauge",
         "Commit statuses queued in the outbox and not delivered yet.");
  out += "boxcar_forge_statuses_undelivered " + std::to_string(forge_statuses_undelivered_) + "\n";
  family(out, "boxcar_http_requests_total", "counter", "HTTP requests answered, by status code.");
  for (const auto& [code, n] : http_responses_) {
    out += "boxcar_http_requests_total{code=\"" + std::to_string(code) + "\"} " +
           std::to_string(n) + "\n";
  }
  return out;
}

}  // namespace boxcar::server
