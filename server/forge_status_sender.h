// ForgeStatusSender: delivers the store's outbox of commit statuses (Store::claim_forge_statuses)
// to GitHub, Gitea and GitLab. It runs on a thread and io_context of its own, so a slow or dead
// forge never holds up jobs, claims or webhooks; it wakes when a job changes state (the
// notifiers) and on a timer (retries, and rows other servers on the same database queued).
// Bounded: a deadline per request, answers read up to 64 KiB, config.status_max_in_flight
// requests at once. Retries with backoff as forge_status_request.h classifies the answers.
#pragma once

#include <memory>
#include <vector>

#include "base/result.h"
#include "http/notifier.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/store/store.h"

namespace boxcar::server {

class ForgeStatusSender {
 public:
  // `store`, `config`, `metrics` and the notifiers must outlive the sender.
  ForgeStatusSender(Store& store, const ServerConfig& config, Metrics& metrics,
                    std::vector<Notifier*> wakes);
  ~ForgeStatusSender();  // stops
  ForgeStatusSender(const ForgeStatusSender&) = delete;
  ForgeStatusSender& operator=(const ForgeStatusSender&) = delete;

  Status start();
  // Aborts the requests in flight (their rows are retried once their hold ends) and joins.
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace boxcar::server
