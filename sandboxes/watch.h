// Watches of the sandbox API (SANDBOXES.md §2.5, §1.5): WatchFeed carries one executor watch
// (Sandbox::watch) to one consumer through a bounded queue: at most kWatchQueue events wait
// for a consumer that does not take them, and what comes past that is counted and announced as
// `overflow {dropped}` before the next event that fits, never dropped silently. SandboxWatches
// is a sandbox's set of them (at most kMaxWatches, 429 past it) and the per-path version
// counters of GET /fs/changes, each fed by an implicit watch of its own.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "base/result.h"
#include "executors/executor.h"

namespace boxcar::sandboxes {

inline constexpr size_t kMaxWatches = 16;
inline constexpr size_t kWatchQueue = 1000;
// Implicit watches of /fs/changes a sandbox keeps at most (the least recently asked goes).
inline constexpr size_t kMaxChangeTrackers = 4;

struct WatchSpec {
  std::string path;  // absolute, checked
  bool recursive = false;
  std::string include, exclude;  // fnmatch(3) globs on the path relative to `path`; "" = all / none
};

// Whether a change at `path` passes the spec's include and exclude.
bool watch_selects(const WatchSpec& spec, const std::string& path);

struct WatchItem {
  std::string name;  // change, overflow, end
  boost::json::object data;
};

class WatchFeed : public std::enable_shared_from_this<WatchFeed> {
 public:
  explicit WatchFeed(WatchSpec spec, size_t capacity = kWatchQueue) : spec_(std::move(spec)), capacity_(capacity) {}

  // The handlers to give Sandbox::watch; `started` runs once: ok when watching, else why not.
  executors::WatchHandlers handlers(std::function<void(Status)> started);
  void hold(std::unique_ptr<executors::WatchHandle> handle) { handle_ = std::move(handle); }

  // The consumer: `ready` says whether it takes an item now; `take` gets each in order; the
  // last one is always `end`. Call pump() when the consumer becomes ready again.
  void attach(std::function<bool()> ready, std::function<void(WatchItem)> take);
  void pump();
  // Ends the watch without an `end` item (the consumer left): the helper is killed.
  void stop();

  const WatchSpec& spec() const { return spec_; }
  size_t queued() const { return queue_.size(); }
  uint64_t dropped_total() const { return dropped_total_; }
  bool ended() const { return ended_; }
  bool helper_running() const { return handle_ != nullptr; }
  bool watching() const { return watching_; }

  // For the tests of the queue (no sandbox): what the executor's handlers do.
  void push(WatchItem item);
  void finish(Status why);

 private:
  WatchSpec spec_;
  size_t capacity_;
  std::deque<WatchItem> queue_;
  uint64_t dropped_ = 0, dropped_total_ = 0;
  bool ended_ = false, stopped_ = false, watching_ = false;
  std::unique_ptr<executors::WatchHandle> handle_;
  std::function<bool()> ready_;
  std::function<void(WatchItem)> take_;
};

class SandboxWatches {
 public:
  // Registers a feed; false when the sandbox has kMaxWatches already (implicit ones count, and
  // the least recently asked of those makes room first).
  bool add(const std::shared_ptr<WatchFeed>& feed);
  size_t count();
  const std::vector<std::weak_ptr<WatchFeed>>& feeds() const { return feeds_; }

  // GET /fs/changes: {status, version} for `path` and the version `since` a client had (0:
  // none). The first call for a path starts its implicit watch and answers resync.
  struct Changes {
    std::string status;  // changed, unchanged, resync
    uint64_t version = 0;
  };
  Result<Changes> changes(executors::Sandbox& sandbox, const std::string& path, uint64_t since);
  // For a tracker's implicit watch: a change under `path`.
  void changed(const std::string& path);
  void lost(const std::string& path);

 private:
  struct Tracker {
    uint64_t from = 0, version = 0, asked = 0;
    std::shared_ptr<WatchFeed> feed;
  };
  void prune();
  std::vector<std::weak_ptr<WatchFeed>> feeds_;
  std::map<std::string, Tracker> trackers_;
  uint64_t next_version_ = 0, asks_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace boxcar::sandboxes
