#include "sandboxes/warm_pool.h"

#include <boost/asio/post.hpp>

namespace boxcar::sandboxes {

bool warm_fits(const protocol::SandboxCreate& spec, const std::string& pool_network) {
  const protocol::SandboxResources defaults;
  const auto& r = spec.resources;
  return spec.image == "host" && spec.network == pool_network && spec.egress.empty() &&
         r.memory_bytes == defaults.memory_bytes && r.cpu_millis == defaults.cpu_millis && r.pids == defaults.pids &&
         r.tmp_bytes == defaults.tmp_bytes && r.disk_bytes == defaults.disk_bytes;
}

WarmPool::WarmPool(boost::asio::io_context& io, size_t target, Make make, Discard discard, std::function<bool()> room)
    : io_(io), target_(target), make_(std::move(make)), discard_(std::move(discard)), room_(std::move(room)) {}

WarmPool::~WarmPool() {
  *alive_ = false;
  clear();
}

std::optional<WarmSandbox> WarmPool::take() {
  std::optional<WarmSandbox> out;
  if (!ready_.empty()) {
    out = std::move(ready_.front());
    ready_.pop_front();
  }
  refill();
  return out;
}

void WarmPool::refill() {
  if (posted_ || ready_.size() >= target_) return;
  posted_ = true;
  // Behind the create's answer: the route's reply is posted to its session's strand, whose
  // invoker is queued after anything posted during the create (measured: a refill posted once
  // ran first, and the 201 waited ~130 ms for it under load). One more hop puts the making of
  // the next sandbox after the answer's write.
  boost::asio::post(io_, [this, alive = alive_] {
    if (!*alive) return;
    boost::asio::post(io_, [this, alive] {
      if (!*alive) return;
      posted_ = false;
      make_one();
    });
  });
}

void WarmPool::make_one() {
  if (ready_.size() >= target_ || (room_ && !room_())) return;
  auto made = make_();
  if (!made) return;  // the next take() tries again
  ready_.push_back(std::move(*made));
  refill();
}

bool WarmPool::discard_one() {
  if (ready_.empty()) return false;
  WarmSandbox w = std::move(ready_.back());
  ready_.pop_back();
  discard_(w);
  return true;
}

void WarmPool::clear() {
  while (discard_one()) {
  }
}

}  // namespace boxcar::sandboxes
