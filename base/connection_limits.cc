#include "base/connection_limits.h"

#include <sys/resource.h>

#include <algorithm>
#include <map>
#include <mutex>

namespace boxcar {

struct ConnectionSlot::Counts {
  std::mutex mu;
  size_t total = 0;
  std::map<std::string, size_t> per_client;
};

namespace {

// The key a client is counted under: its IPv4 address (an IPv4-mapped IPv6 one included), or
// the /64 of an IPv6 address, since one host is usually given a whole /64 to pick from.
std::string client_key(const boost::asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return client_key(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()));
  }
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    return std::string(b.begin(), b.end());
  }
  auto b = a.to_v6().to_bytes();
  return "6" + std::string(b.begin(), b.begin() + 8);
}

std::string describe(const boost::asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).to_string();
  }
  return a.is_v4() ? a.to_string() : a.to_string() + " (its /64)";
}

}  // namespace

uint64_t open_file_limit() {
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return 1024;
  return nofile.rlim_cur;
}

uint64_t raise_open_file_limit() {
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  return open_file_limit();
}

ConnectionLimits default_connection_limits(uint64_t open_file_limit, unsigned fds_per_connection,
                                           size_t ceiling) {
  uint64_t reserve = std::max<uint64_t>(256, open_file_limit / 4);
  uint64_t budget = open_file_limit > reserve ? open_file_limit - reserve : 0;
  uint64_t n = budget / 2 / std::max(1u, fds_per_connection);
  ConnectionLimits limits;
  // A tiny limit still lets a few clients in: running out of descriptors then is the
  // operator's call, and the accept loop survives it (base/listener.h).
  limits.max_connections = static_cast<size_t>(std::clamp<uint64_t>(n, 16, ceiling));
  limits.max_per_client = std::min<size_t>(256, limits.max_connections);
  return limits;
}

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& other) noexcept {
  if (this != &other) {
    release();
    counts_ = std::move(other.counts_);
    client_ = std::move(other.client_);
  }
  return *this;
}

void ConnectionSlot::release() {
  if (!counts_) return;
  {
    std::lock_guard lock(counts_->mu);
    --counts_->total;
    auto it = counts_->per_client.find(client_);
    if (it != counts_->per_client.end() && --it->second == 0) counts_->per_client.erase(it);
  }
  counts_.reset();
}

ConnectionCounter::ConnectionCounter(ConnectionLimits limits)
    : limits_(limits), counts_(std::make_shared<ConnectionSlot::Counts>()) {}

Result<ConnectionSlot> ConnectionCounter::admit(const boost::asio::ip::address& client) {
  std::string key = client_key(client);
  std::lock_guard lock(counts_->mu);
  if (counts_->total >= limits_.max_connections) {
    return Error{"too many connections (this listener holds at most " +
                 std::to_string(limits_.max_connections) + ")"};
  }
  size_t& mine = counts_->per_client[key];
  if (mine >= limits_.max_per_client) {
    return Error{"too many connections from " + describe(client) + " (at most " +
                 std::to_string(limits_.max_per_client) + " per client address)"};
  }
  ++mine;
  ++counts_->total;
  ConnectionSlot slot;
  slot.counts_ = counts_;
  slot.client_ = std::move(key);
  return slot;
}

size_t ConnectionCounter::open() const {
  std::lock_guard lock(counts_->mu);
  return counts_->total;
}

size_t ConnectionCounter::open_from(const boost::asio::ip::address& client) const {
  std::lock_guard lock(counts_->mu);
  auto it = counts_->per_client.find(client_key(client));
  return it == counts_->per_client.end() ? 0 : it->second;
}

}  // namespace boxcar
