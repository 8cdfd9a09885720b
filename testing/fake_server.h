// FakeServer (tests only): the agent protocol's server side on real loopback HTTP, so the
// agent's real client, retries and long polls are exercised. Agents register with `token` and
// then use the credential it hands out; each claim hands out a lease token that the job's
// reports must carry. It keeps what it is told per job, stores log chunks once per (step,
// attempt, seq), and can be scripted to fail uploads, cancel a job, drop its lease or revoke
// an agent.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "protocol/agent_protocol.h"
#include "protocol/sandbox_api.h"

namespace boxcar::agent::testing {

struct FakeArtifact {
  std::string sha256;  // as the agent announced it (checked against the body)
  std::string step;
  std::string data;
  std::string link;  // a link's target text (uploaded with ?link=, no body)
};

struct FakeJob {
  std::map<std::string, FakeArtifact> artifacts;  // by path
  int artifact_uploads = 0;                       // every attempt, failed ones included
  std::vector<std::pair<std::string, FakeArtifact>> stored_artifacts;  // (path, upload), in order
  int sha256_mismatches = 0;                      // uploads refused: body and sha256 differ
  std::vector<protocol::StepUpdate> steps;
  std::map<std::tuple<std::string, int, int64_t>, std::string> logs;  // (step, attempt, seq)
  int duplicate_chunks = 0;
  int heartbeats = 0;
  std::optional<protocol::CompleteRequest> complete;
  bool cancel = false;  // answered in heartbeats
  bool lost = false;
  std::string agent;    // who claimed it (the registered name)
  std::string lease;    // the lease token its claim handed out
  int wrong_lease = 0;  // reports refused 409: no or another lease token

  // The stored log of one step's attempt, chunks in seq order.
  std::string log(const std::string& step, int attempt = 1) const;
  std::optional<protocol::StepUpdate> last_step(const std::string& name) const;
};

class FakeServer {
 public:
  FakeServer();
  ~FakeServer();

  std::string url() const;
  std::string token = "agent-token";  // the registration token

  // A credential and a lease on job `id` without a claim (for tests that drive an outbox).
  struct Grant {
    std::string credential, lease;
  };
  Grant grant(int64_t id);
  // Its credential stops working at once; its name cannot register again.
  void revoke(const std::string& name);
  // Registrations by name, in order (a re-registration shows twice).
  std::vector<std::string> registrations();
  bool wait_registrations(size_t n, std::chrono::milliseconds timeout);

  void enqueue(protocol::JobSpec job);
  // The claim of job `id` answers `body` as it is (malformed JSON, or larger than an agent
  // reads), with the job and lease headers of a real claim.
  void enqueue_unreadable(int64_t id, std::string body);
  void fail_log_uploads(int n);  // the next n log uploads are stored, then answered 500
  // Log uploads with a chunk whose data holds `marker` are answered 400 and store nothing.
  void refuse_logs_containing(std::string marker);
  int refused_log_uploads();
  void fail_artifact_uploads(int n);  // the next n artifact uploads are answered 503, not stored
  void set_cancel(int64_t id);
  void set_lost(int64_t id);

  // Sandbox syncs as they arrived: the agent whose credential sent each one, and its body.
  struct SandboxSyncSeen {
    std::string agent;
    protocol::SandboxSync sync;
  };
  std::vector<SandboxSyncSeen> sandbox_syncs();
  // Named in the `deleted` of every sync answer from now on (as the server does until the
  // agent stops reporting it).
  void delete_sandbox(std::string id);
  // The next n syncs are answered 503.
  void fail_sandbox_syncs(int n);

  FakeJob job(int64_t id);
  int jobs_claimed();
  size_t queued();
  // Waits until `pred` (called under the server's lock) holds.
  bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout);
  // Waits until `pred` holds for job `id`.
  bool wait_job(int64_t id, const std::function<bool(const FakeJob&)>& pred,
                std::chrono::milliseconds timeout);

 private:
  struct Answer {
    unsigned status;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers = {};
  };
  void accept_loop();
  void serve(int fd);
  Answer handle(const std::string& target, const std::string& auth, const std::string& lease,
                const std::string& body, int fd);
  Answer register_agent(const std::string& auth, const std::string& body);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> connections_;
  std::set<int> open_fds_;
  std::deque<protocol::JobSpec> queue_;
  std::map<int64_t, std::string> unreadable_;  // claim bodies sent as they are
  std::map<int64_t, FakeJob> jobs_;
  int claimed_ = 0;
  std::map<std::string, std::string> credentials_;  // credential -> agent name
  std::set<std::string> revoked_;                   // names
  std::vector<std::string> registrations_;
  int fail_logs_ = 0;
  std::string refuse_logs_marker_;
  int refused_logs_ = 0;
  int fail_artifacts_ = 0;
  std::vector<SandboxSyncSeen> sandbox_syncs_;
  std::vector<std::string> deleted_sandboxes_;
  int fail_sandbox_syncs_ = 0;
};

}  // namespace boxcar::agent::testing
