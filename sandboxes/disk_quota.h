// DiskQuota: the /workspace disk quota of one API sandbox (SANDBOXES.md §1.5, resources.disk_bytes)
// on a filesystem without project quotas, which is what a plain Debian root is (why the kernel
// cannot do it there: agent/daemon/workspace_watch.h). Two halves:
// - the file API asks fits() before it writes into /workspace and refuses with 507
//   quota_exceeded, then counts what it wrote (wrote());
// - SandboxHost measures every running sandbox's workspace every 5 s off the io_context
//   (DiskMeter, base/workspace_usage.h: no link followed, no mount entered, a hard link once,
//   allocated blocks) and, past the quota, stops its commands (outcome quota_exceeded); new
//   commands and uploads then get 507 until files are removed (GET, DELETE and /fs/list work).
// The price: a command can write past the quota for up to one interval before it is stopped.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "base/result.h"
#include "http/http_server.h"

namespace boxcar::sandboxes {

class DiskQuota {
 public:
  // More entries than this in a workspace count as over the quota: a walk stays bounded.
  static constexpr uint64_t kMaxEntries = 1'000'000;

  explicit DiskQuota(int64_t limit_bytes) : limit_(limit_bytes > 0 ? static_cast<uint64_t>(limit_bytes) : 0) {}

  uint64_t limit() const { return limit_; }
  // The last measure plus what the file API wrote since.
  uint64_t used() const { return used_; }
  // The last measure found the workspace past the quota (cleared by a measure under it).
  bool over() const { return !why_.empty(); }
  // `bytes` more fit by the figure held now (false while over()).
  bool fits(uint64_t bytes) const { return !over() && bytes <= limit_ && used_ <= limit_ - bytes; }
  // The file API wrote `bytes` into /workspace (counted in whole 4 KiB blocks).
  void wrote(uint64_t bytes);
  // A measure: `bytes` used, `entries` past kMaxEntries or not.
  void measured(uint64_t bytes, bool too_many_entries);
  // A measure failed (`error`: why). The sandbox can make every walk fail (renaming directories
  // while it runs gives ESTALE), so failing is not a way out of the quota: kMaxFailures in a row
  // count as over it, until a measure succeeds.
  static constexpr int kMaxFailures = 2;
  void unmeasured(std::string_view error);

  // The 507 quota_exceeded answer to `what` ("exec", "PUT /workspace/a"), saying how to go on.
  server::HttpResponse refusal(std::string_view what, uint64_t adding = 0) const;
  // refusal("…") while over(), else nothing: the gate of exec, processes and uploads.
  std::optional<server::HttpResponse> gate(std::string_view what) const;

 private:
  uint64_t limit_;
  uint64_t used_ = 0;
  int failures_ = 0;  // measures failed in a row
  std::string why_;  // over(): "/workspace holds 2.0 MiB, past its 1.0 MiB quota"
};

// Measures workspaces on a thread of its own, one at a time, so a large tree never holds up the
// io_context. Destroying it stops a walk in progress; no `done` runs after that.
class DiskMeter {
 public:
  struct Usage {
    uint64_t bytes = 0;
    bool too_many_entries = false;
  };

  explicit DiskMeter(boost::asio::io_context& io) : io_(io) {}
  ~DiskMeter();
  DiskMeter(const DiskMeter&) = delete;
  DiskMeter& operator=(const DiskMeter&) = delete;

  // Measures `workspace` up to just past `limit` bytes (an attack costs no more than the quota
  // to measure); `done` runs on the io_context.
  void measure(std::filesystem::path workspace, uint64_t limit, std::function<void(Result<Usage>)> done);
  // Holds the meter's thread until `released` is ready: what tests use to see what queues up
  // behind a walk without depending on how fast one is.
  void hold(std::shared_future<void> released);

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<std::atomic<bool>> stop_ = std::make_shared<std::atomic<bool>>(false);
  boost::asio::thread_pool pool_{1};
};

}  // namespace boxcar::sandboxes
