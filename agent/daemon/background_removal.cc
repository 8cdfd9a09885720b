#include "agent/daemon/background_removal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "base/tree_walk.h"

namespace boxcar::agent {

namespace fs = std::filesystem;

BackgroundRemoval::BackgroundRemoval(fs::path trash)
    : trash_(std::move(trash)), tag_(std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}())) {
  std::error_code ec;
  fs::create_directories(trash_, ec);
  ::chmod(trash_.c_str(), 0700);
  for (const auto& e : fs::directory_iterator(trash_, ec)) queue_.push_back(e.path());
  thread_ = std::thread([this] { run(); });
}

BackgroundRemoval::~BackgroundRemoval() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BackgroundRemoval::remove(const fs::path& tree) {
  struct stat st {};
  if (::lstat(tree.c_str(), &st) != 0) return;  // nothing there
  fs::path target = tree;
  {
    std::lock_guard lock(mu_);
    // A unique name: the same job id may be removed again (a leftover, then the job's own).
    fs::path aside = trash_ / (tag_ + "-" + std::to_string(++counter_) + "-" + tree.filename().string());
    if (::rename(tree.c_str(), aside.c_str()) == 0) target = aside;
    queue_.push_back(target);
  }
  cv_.notify_all();
}

bool BackgroundRemoval::busy() const {
  std::lock_guard lock(mu_);
  return working_ || !queue_.empty();
}

void BackgroundRemoval::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    fs::path next = std::move(queue_.front());
    queue_.pop_front();
    working_ = true;
    lock.unlock();
    remove_tree(next, stop_);
    lock.lock();
    working_ = false;
  }
}

}  // namespace boxcar::agent
