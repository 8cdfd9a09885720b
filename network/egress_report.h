// What a step's egress policy refused, for the line at the end of its log and the job's counter
// in /metrics. Read from the nftables sets that record refusals (network/job_network.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace boxcar::network {

struct RefusedDestination {
  std::string address;     // "10.0.0.5", "2001:db8::1"
  uint16_t port = 0;       // 0 for protocols without ports (icmp)
  std::string protocol;    // "tcp", "udp", "icmp", ...
  uint64_t count = 0;      // connection attempts (TCP SYNs, UDP/ICMP packets) refused
  std::string name;        // a name the job's resolver answered with this address, if any
  std::string reason;      // "private address (RFC 1918)", "not in this step's egress list", ...
};

struct EgressReport {
  std::vector<RefusedDestination> refused;  // most refused first
  std::vector<std::string> refused_names;   // lookups the resolver refused: "evil.example (not in any egress list)"
  uint64_t refused_total = 0;               // sum of counts, including destinations not listed
};

// One line for the step's log, "" when nothing was refused:
//   egress refused: 3 connections to 10.0.0.5:5432 (private address (RFC 1918)), 1 to
//   93.184.216.34:443 (example.com: not in this step's egress list); lookups of evil.example
// At most 5 destinations and 5 names are named; the rest are counted ("and 7 more").
std::string describe(const EgressReport& report);

}  // namespace boxcar::network
