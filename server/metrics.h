// Metrics: the server's Prometheus counters and histograms, rendered in the text exposition
// format (version 0.0.4) for GET /metrics. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace boxcar::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // "<name>_bucket{le=...} n" lines (cumulative), then _sum and _count.
  void render(const std::string& name, std::string& out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  void count_http_response(unsigned code);
  // result: queued | duplicate | ignored | ping | bad_signature | bad_request | too_large | error
  void count_webhook(const std::string& provider, const std::string& result);
  void observe_step_duration(double seconds);
  // Retention (--job-retention) deleted `n` finished jobs.
  void count_jobs_deleted(int64_t n);
  // A log follower was refused 429: `scope` is "job" or "client" (which cap it hit).
  void count_follower_refused(const std::string& scope);

  // A finished step's refused connections (as the agent counted them for the whole step, so a
  // resent update counts once). Kept for the most recent kEgressJobs jobs that had any.
  void set_egress_refused(int64_t job, const std::string& step, int64_t refused);
  static constexpr size_t kEgressJobs = 1000, kEgressStepsPerJob = 1024;

  // A commit status delivery (forge_status_sender.h): result delivered | retry | failed. And the
  // outbox rows not delivered yet, as the sender last counted them.
  void count_forge_status(const std::string& forge, const std::string& result);
  void set_forge_statuses_undelivered(int64_t n);

  uint64_t webhook_count(const std::string& provider, const std::string& result) const;

  // The whole exposition; the job gauges come from the store at scrape time, and
  // `claims_waiting` (agents' claims held open until a job comes) from the server.
  // `log_followers`: the live log streams held open now (LogFollowers::total()).
  std::string render(const std::map<std::string, int64_t>& jobs_by_state,
                     size_t claims_waiting, size_t log_followers = 0) const;

 private:
  mutable std::mutex mu_;
  std::map<unsigned, uint64_t> http_responses_;
  std::map<std::pair<std::string, std::string>, uint64_t> webhooks_;
  Histogram step_duration_;
  uint64_t jobs_deleted_ = 0;
  std::map<std::string, uint64_t> followers_refused_;
  std::map<int64_t, std::map<std::string, uint64_t>> egress_refused_;  // job -> step -> refused
  uint64_t egress_refused_evicted_ = 0;  // of jobs no longer listed, for the total
  std::map<std::pair<std::string, std::string>, uint64_t> forge_statuses_;  // (forge, result)
  int64_t forge_statuses_undelivered_ = 0;
};

}  // namespace boxcar::server
