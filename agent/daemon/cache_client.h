// CacheClient: the server's copy of the job's repository's [[step.cache]] entries, for one job,
// with its lease (docs/api.md "Caches"): a lookup, then the tar streamed into an unnamed file
// beside the agent's store and checked against its sha256; uploads queued on the job's outbox
// (sent before the job completes, retried like artifacts). The repository is the server's
// choice (the job's own), never the agent's.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/io_context.hpp>

#include "agent/cache_remote.h"
#include "agent/daemon/job_outbox.h"
#include "http/http_client.h"

namespace boxcar::agent {

class CacheClient : public CacheRemote {
 public:
  // `dir`: where fetched tars are written (unnamed, O_TMPFILE); `max_bytes`: larger ones are
  // not fetched (the store's cap).
  CacheClient(HttpClient& client, JobOutbox& outbox, int64_t job, std::string lease,
              std::filesystem::path dir, uint64_t max_bytes);
  ~CacheClient() override;  // cancels what is in flight; no handler runs after

  void fetch(const std::string& key, const std::vector<std::string>& restore_keys,
             std::function<void(std::optional<RemoteCacheEntry>, std::string)> done) override;
  void upload(const std::string& key, std::shared_ptr<const unique_fd> tar, uint64_t bytes,
              const std::string& sha256) override;

 private:
  HttpClient& client_;
  JobOutbox& outbox_;
  int64_t job_;
  std::string lease_;
  std::filesystem::path dir_;
  uint64_t max_bytes_;
  std::set<uint64_t> in_flight_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace boxcar::agent
