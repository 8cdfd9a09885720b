// Connection caps: how many connections one listener holds at once, in all and per client
// address, with defaults sized from the process's file-descriptor limit so a flood of
// connections runs into a cap (answered at once) long before it runs out of descriptors.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"

namespace boxcar {

struct ConnectionLimits {
  size_t max_connections = 4096;  // per listener
  size_t max_per_client = 256;    // per client address (IPv6: per /64, what one host holds)
};

// Raises the soft RLIMIT_NOFILE to the hard limit, as servers commonly do at start (the soft
// default of 1024 dates from select()); returns the soft limit in force afterwards.
uint64_t raise_open_file_limit();

// The soft RLIMIT_NOFILE now.
uint64_t open_file_limit();

// The caps a listener gets by default, given the process's open-file limit: a reserve of a
// quarter of the descriptors (at least 256) stays for the store, the agents and their
// sandboxes; a listener may use half of the rest, each connection costing
// `fds_per_connection` (a proxied one holds two); never more than `ceiling` connections, nor
// more than 256 per client address.
ConnectionLimits default_connection_limits(uint64_t open_file_limit, unsigned fds_per_connection,
                                           size_t ceiling);

// A held connection's place in its listener's counts, given back when destroyed or released.
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  ConnectionSlot(ConnectionSlot&& other) noexcept = default;
  ConnectionSlot& operator=(ConnectionSlot&& other) noexcept;
  ~ConnectionSlot() { release(); }
  void release();

  struct Counts;  // opaque: the counter's shared state

 private:
  friend class ConnectionCounter;
  std::shared_ptr<Counts> counts_;
  std::string client_;
};

// Counts the connections of one listener. Thread-safe; slots may outlive the counter.
class ConnectionCounter {
 public:
  explicit ConnectionCounter(ConnectionLimits limits);

  // A slot for one more connection from `client`, or an Error saying which cap it would pass
  // ("too many connections from 127.0.0.2 (at most 256 per client address)").
  Result<ConnectionSlot> admit(const boost::asio::ip::address& client);
  size_t open() const;  // connections held now
  size_t open_from(const boost::asio::ip::address& client) const;
  const ConnectionLimits& limits() const { return limits_; }

 private:
  ConnectionLimits limits_;
  std::shared_ptr<ConnectionSlot::Counts> counts_;
};

}  // namespace boxcar
