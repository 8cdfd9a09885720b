// Nft: libnftables bound to one network namespace (the one the calling thread was in when it was
// opened: its netlink socket stays there), running whole scripts as one transaction and reading
// the refusal sets back with their counters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

struct nft_ctx;

namespace boxcar::network {

// One element of a refusal set (network/job_rules.h): `port` 0 for the sets without ports.
struct CountedElement {
  uint32_t net_class = 0;
  std::string protocol;  // "tcp", "udp", "icmp", ...
  std::string address;
  uint16_t port = 0;
  uint64_t packets = 0;
};

class Nft {
 public:
  // In the calling thread's current network namespace. Its socket is numbered below FD_SETSIZE
  // even in a process holding thousands of descriptors (libnftables select()s on it): keep a
  // context for one operation, since a few low numbers are shared by all (nft.cc).
  static Result<Nft> open();

  // The script as one transaction: all of it or nothing. The error carries nft's own message.
  Status run(std::string_view script);
  // A command's output as JSON text.
  Result<std::string> json(std::string_view command);
  // The elements of a set of table `inet <table>` keyed (cgroup . l4proto . daddr [. dport]).
  Result<std::vector<CountedElement>> counted_elements(std::string_view table, std::string_view set);
  // The packets of a named counter of table `inet <table>`.
  Result<uint64_t> counter_packets(std::string_view table, std::string_view counter);
  // The names of the tables of family inet.
  Result<std::vector<std::string>> inet_tables();

 private:
  struct Free {
    int low = -1;  // the reserved low number its socket was moved to, or -1
    void operator()(nft_ctx* c) const;
  };
  Nft(nft_ctx* c, int low) : ctx_(c, Free{low}) {}
  std::unique_ptr<nft_ctx, Free> ctx_;
};

}  // namespace boxcar::network
