#include "agent/daemon/workspace_watch.h"

#include <algorithm>
#include <chrono>

#include <boost/asio/post.hpp>

namespace boxcar::agent {

namespace asio = boost::asio;

struct WorkspaceWatch::Entry {
  std::vector<std::filesystem::path> dirs;
  std::function<void(const std::string&)> over;
  std::atomic<bool> alive{true};   // its Handle exists
  std::atomic<bool> done{false};   // found over a limit: reported once, not walked again
};

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
