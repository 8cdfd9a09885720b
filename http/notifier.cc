#include "http/notifier.h"

#include <vector>

#include <boost/asio/post.hpp>

namespace boxcar::server {

uint64_t Notifier::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

uint64_t Notifier::wait(uint64_t seen, std::function<void()> wake) {
  {
    std::lock_guard lock(mu_);
    if (generation_ == seen) {
      uint64_t id = next_id_++;
      waiters_.emplace(id, std::move(wake));
      return id;
    }
  }
  wake();
  return 0;
}

void Notifier::cancel(uint64_t id) {
  std::lock_guard lock(mu_);
  waiters_.erase(id);
}

void Notifier::notify() {
  std::map<uint64_t, std::function<void()>> woken;
  {
    std::lock_guard lock(mu_);
    ++generation_;
    woken.swap(waiters_);
  }
  for (auto& [_, wake] : woken) wake();
}

size_t Notifier::waiters() const {
  std::lock_guard lock(mu_);
  return waiters_.size();
}

void wait_notified(Notifier& notifier, uint64_t seen,
                   const std::shared_ptr<boost::asio::steady_timer>& timer,
                   std::chrono::milliseconds timeout, std::function<void()> done) {
  timer->expires_after(timeout);
  std::weak_ptr<boost::asio::steady_timer> weak = timer;
  // The wake is posted to the timer's strand: steady_timer is not thread-safe.
  uint64_t id = notifier.wait(seen, [weak] {
    if (auto t = weak.lock()) {
      boost::asio::post(t->get_executor(), [t] { t->cancel(); });
    }
  });
  timer->async_wait([&notifier, id, done = std::move(done)](boost::system::error_code) {
    notifier.cancel(id);
    done();
  });
}

}  // namespace boxcar::server
