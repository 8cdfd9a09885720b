// DnsServer: the resolver a job's steps talk to, on the job's gateway address, UDP and TCP port
// 53. It answers A and AAAA through the HostResolver (NODATA for other types, FORMERR/NOTIMP for
// what is not a standard query), asks the job's DnsPolicy first, and tells it every answer
// before sending it, so the addresses are in the step's allowed set before the step can use them.
// Everything it reads is hostile: sizes, counts, compression and time are bounded.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include "base/result.h"
#include "network/host_resolver.h"

namespace boxcar::network {

// The job's side, called on the io_context's thread.
class DnsPolicy {
 public:
  virtual ~DnsPolicy() = default;
  // A reason to refuse looking `name` up (lowercase, no trailing dot), e.g. "not in any step's
  // egress list"; none: look it up. A refused query gets REFUSED.
  virtual std::optional<std::string> refuse(std::string_view name) = 0;
  // Every answer with addresses, before it is sent, with the TTL the step is given.
  virtual void answered(std::string_view name, const std::vector<boost::asio::ip::address>& addresses,
                        uint32_t ttl_seconds) = 0;
};

struct DnsServerOptions {
  std::vector<boost::asio::ip::address> listen;  // the gateway's addresses, port 53 each
  uint16_t port = 53;                            // tests use another
  uint32_t min_ttl_seconds = 30, max_ttl_seconds = 300;
  size_t max_in_flight = 64;        // queries being resolved at once; more get SERVFAIL
  size_t max_tcp_connections = 16;  // more are closed at once
  Millis tcp_idle_timeout{10000};   // a TCP connection without a whole query for this long is closed
  Millis timeout{5000};             // a lookup that takes longer gets SERVFAIL
};

class DnsServer {
 public:
  // Stops answering and closes its sockets; lookups in flight are dropped.
  virtual ~DnsServer() = default;
  // Binds every address of `options.listen` (UDP and TCP). `resolver` and `policy` must outlive it.
  static Result<std::unique_ptr<DnsServer>> make(boost::asio::io_context& io, HostResolver& resolver,
                                                 DnsPolicy& policy, DnsServerOptions options);
};

}  // namespace boxcar::network
