// CacheRemote: the server's copy of a repository's [[step.cache]] entries, as the engine sees
// it (the agent daemon's is agent/daemon/cache_client.h; `boxcar run` has none). Its calls are
// made and answered on the engine's io thread; every failure is a miss or a dropped upload,
// never a failed step.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace boxcar::agent {

struct RemoteCacheEntry {
  std::string key;    // the entry's own key
  bool exact = false;
  unique_fd tar;      // a tar of pack_cache_entry's (cache_archive.h), at offset 0, its hash checked
};

class CacheRemote {
 public:
  virtual ~CacheRemote() = default;
  // `key`, else the newest entry of each of `restore_keys` in order; nullopt: none (or the
  // server could not be asked: `why` says so, else empty).
  virtual void fetch(const std::string& key, const std::vector<std::string>& restore_keys,
                     std::function<void(std::optional<RemoteCacheEntry> entry, std::string why)> done) = 0;
  // Queues the upload of a saved entry's tar (`bytes` long, hashing to `sha256`).
  virtual void upload(const std::string& key, std::shared_ptr<const unique_fd> tar, uint64_t bytes,
                      const std::string& sha256) = 0;
};

}  // namespace boxcar::agent
