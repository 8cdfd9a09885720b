// DnsUpstream (tests only): a real DNS server on loopback UDP standing in for the machine's
// nameservers, so a HostResolver pointed at it (HostResolver::make(upstream.server())) gets
// answers with the TTLs a test chooses, NXDOMAIN for other names, and no answer at all for
// names the test wants to hang. It runs on a thread of its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "base/unique_fd.h"

namespace boxcar::testing {

class DnsUpstream {
 public:
  // Listens on `address`:0 (UDP).
  explicit DnsUpstream(const std::string& address = "127.0.0.1");
  ~DnsUpstream();

  // "127.0.0.1:40123", for HostResolver::make.
  std::string server() const;
  // `name` (lowercase) answers these addresses (A and AAAA by family) with `ttl`.
  void add(const std::string& name, std::vector<boost::asio::ip::address> addresses, uint32_t ttl);
  // `name` gets no answer: the resolver times out.
  void silence(const std::string& name);
  // Queries received so far.
  int queries() const { return queries_; }

 private:
  void run();

  unique_fd fd_, stop_;
  std::string server_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::vector<boost::asio::ip::address>, uint32_t>> names_;
  std::set<std::string> silent_;
  std::atomic<int> queries_{0};
  std::thread thread_;
};

}  // namespace boxcar::testing
