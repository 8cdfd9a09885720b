// HostResolver: names resolved the way the agent machine resolves them (c-ares, which reads
// /etc/hosts, /etc/nsswitch.conf's order and /etc/resolv.conf), with the answer's TTL. One per
// process, on a thread of its own, shared by every job's DNS server.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "base/duration.h"
#include "base/result.h"

namespace boxcar::network {

struct HostAnswer {
  std::vector<boost::asio::ip::address> addresses;  // empty: the name exists, no address of that family
  uint32_t ttl_seconds = 0;                         // the smallest TTL of the answer (0 from /etc/hosts)
  bool nxdomain = false;                            // the name does not exist
};

class HostResolver {
 public:
  virtual ~HostResolver() = default;
  // `servers` ("127.0.0.1:5353,[::1]:53"): ask these instead of /etc/resolv.conf's nameservers
  // (tests give their own upstream); empty: the machine's. The search domains of resolv.conf are
  // never applied: a job's query is for the name it gives, not a name of the agent's domain.
  static Result<std::unique_ptr<HostResolver>> make(std::string servers = {});

  // Addresses of `name` of `family` (AF_INET or AF_INET6). `done` is called exactly once, on
  // the resolver's own thread (post it to where it belongs), with an Error when the host's
  // resolution failed (servers unreachable, `timeout` passed).
  virtual void resolve(std::string name, int family, Millis timeout,
                       std::function<void(Result<HostAnswer>)> done) = 0;
};

}  // namespace boxcar::network
