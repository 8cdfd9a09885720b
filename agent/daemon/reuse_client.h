// ReuseClient: a job's StepReuse (agent/step_reuse.h) through its server, with its lease: POST
// "reuse" has the server copy the step's artifact records from the job re-run (only that job's:
// the server checks it against the job's rerun_of), then each file is streamed from GET
// "artifacts/<path>" into the step's layer, checked against the listed size and sha256, and
// each link made as listed (protocol/rerun_protocol.h). Files come back 0644, directories 0755:
// artifacts keep no mode bits.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "agent/step_reuse.h"
#include "http/http_client.h"

namespace boxcar::agent {

class ReuseClient : public StepReuse {
 public:
  ReuseClient(HttpClient& client, int64_t job, std::string lease, int64_t from_job);
  ~ReuseClient() override;  // cancels what is in flight; no handler runs after

  std::string origin() const override;
  void restore(const std::string& step, const std::filesystem::path& into,
               std::function<void(size_t, std::string)> done) override;

 private:
  struct Restore;
  void next_file(std::shared_ptr<Restore> r);

  HttpClient& client_;
  int64_t job_;
  std::string lease_;
  int64_t from_job_;
  std::set<uint64_t> in_flight_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace boxcar::agent
