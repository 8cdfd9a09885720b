#include "network/link_reaper.h"

#include <optional>

#include "network/netlink.h"

namespace boxcar::network {

LinkReaper::LinkReaper(SlotPool& slots) : slots_(slots), thread_([this] { run(); }) {}

LinkReaper::~LinkReaper() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void LinkReaper::reap(std::string name, Slot slot) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(name), std::move(slot)});
  }
  cv_.notify_one();
}

void LinkReaper::run() {
  // A netlink socket of its own: the io thread keeps using the NetworkHost's.
  std::optional<Netlink> netlink;
  if (auto nl = Netlink::open()) netlink.emplace(std::move(*nl));
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    // Without a socket the link stays; the slot's next claimer reclaims it (slot_pool.h).
    if (!task.link.empty() && netlink) (void)netlink->delete_link(task.link);
    slots_.release(std::move(task.slot));
  }
}

}  // namespace boxcar::network
