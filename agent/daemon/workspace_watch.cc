#include "agent/daemon/workspace_watch.h"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include <boost/asio/post.hpp>

#include "base/tree_walk.h"
#include "base/size.h"

namespace boxcar::agent {

namespace asio = boost::asio;

struct WorkspaceWatch::Entry {
  std::vector<std::filesystem::path> dirs;
  std::function<void(const std::string&)> over;
  std::atomic<bool> alive{true};   // its Handle exists
  std::atomic<bool> done{false};   // found over a limit: reported once, not walked again
};

Result<WorkspaceUsage> measure_workspace(const std::filesystem::path& dir, const WorkspaceLimits& limits,
                                         const std::function<bool()>& keep_going) {
  return measure_workspace(std::vector<std::filesystem::path>{dir}, limits, keep_going);
}

Result<WorkspaceUsage> measure_workspace(const std::vector<std::filesystem::path>& dirs, const WorkspaceLimits& limits,
                                         const std::function<bool()>& keep_going) {
  WorkspaceUsage usage;
  std::unordered_set<ino_t> linked;  // files with more than one name: counted once
  bool cancelled = false;
  TreeVisitor v;
  v.entry = [&](int, const char*, const struct stat& st) {
    ++usage.inodes;
    if (S_ISDIR(st.st_mode) || st.st_nlink < 2 || linked.insert(st.st_ino).second) {
      usage.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    }
    if (!over_limit(usage, limits).empty()) return false;
    if ((usage.inodes & 1023) == 0 && keep_going && !keep_going()) {
      cancelled = true;
      return false;
    }
    return true;
  };
  for (const auto& dir : dirs) {
    Status walked = walk_tree(dir, v, /*with_stats=*/true);
    if (cancelled) return Error{"stopped", ECANCELED};
    if (!over_limit(usage, limits).empty()) break;
    // A directory not made yet (a job's layers before its first step) holds nothing.
    if (!walked.ok() && walked.error().err != ENOENT) return walked.error();
  }
  return usage;
}

std::string over_limit(const WorkspaceUsage& usage, const WorkspaceLimits& limits) {
  if (limits.bytes > 0 && usage.bytes > limits.bytes) {
    return "workspace over its " + format_size(limits.bytes) + " limit";
  }
  if (limits.inodes > 0 && usage.inodes > limits.inodes) {
    return "workspace over its limit of " + std::to_string(limits.inodes) +
           " files and directories";
  }
  return {};
}

WorkspaceWatch::Handle::~Handle() { entry_->alive = false; }

WorkspaceWatch::WorkspaceWatch(asio::io_context& io, WorkspaceLimits limits) : io_(io), limits_(limits) {
  if (limits_.bytes > 0 || limits_.inodes > 0) thread_ = std::thread([this] { run(); });
}

WorkspaceWatch::~WorkspaceWatch() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<WorkspaceWatch::Handle> WorkspaceWatch::watch(std::filesystem::path dir,
                                                              std::function<void(const std::string&)> over) {
  return watch(std::vector<std::filesystem::path>{std::move(dir)}, std::move(over));
}

std::unique_ptr<WorkspaceWatch::Handle> WorkspaceWatch::watch(std::vector<std::filesystem::path> dirs,
                                                              std::function<void(const std::string&)> over) {
  auto entry = std::make_shared<Entry>();
  entry->dirs = std::move(dirs);
  entry->over = std::move(over);
  if (thread_.joinable()) {
    std::lock_guard lock(mu_);
    entries_.push_back(entry);
  }
  cv_.notify_all();
  return std::make_unique<Handle>(entry);
}

void WorkspaceWatch::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    std::erase_if(entries_, [](const auto& e) { return !e->alive || e->done; });
    if (entries_.empty()) {
      cv_.wait(lock, [this] { return stop_.load() || !entries_.empty(); });
      continue;
    }
    auto round = entries_;
    lock.unlock();
    auto started = std::chrono::steady_clock::now();
    for (const auto& e : round) {
      if (!e->alive) continue;
      auto usage = measure_workspace(e->dirs, limits_, [this, &e] { return e->alive && !stop_; });
      if (!usage.ok()) continue;
      std::string why = over_limit(*usage, limits_);
      if (why.empty()) continue;
      e->done = true;
      asio::post(io_, [e, why] {
        if (e->alive && e->over) e->over(why);
      });
    }
    auto spent = std::chrono::steady_clock::now() - started;
    lock.lock();
    auto pause = std::max<std::chrono::steady_clock::duration>(limits_.interval, 4 * spent);
    cv_.wait_for(lock, pause, [this] { return stop_.load(); });
  }
}

}  // namespace boxcar::agent
