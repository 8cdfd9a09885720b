// StandInInternet: a network namespace holding web servers on public-looking addresses, behind a
// veth from the machine with routes to them, so tests reach "the internet" through a job
// network's NAT without leaving the machine. Each server answers any request on port 80 with a
// body naming its address ("stand-in 198.51.100.10"). One at a time per machine: the routes are
// the machine's. Everything is removed by the destructor.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::testing {

class StandInInternet {
 public:
  static constexpr const char* kWebA = "198.51.100.10";       // TEST-NET-2
  static constexpr const char* kWebB = "203.0.113.10";        // TEST-NET-3
  static constexpr const char* kMetadata = "169.254.169.254";  // what cloud metadata looks like
  static constexpr const char* kWebV6 = "2001:db8:100::10";     // IPv6 documentation prefix

  static Result<std::unique_ptr<StandInInternet>> make();
  ~StandInInternet();

  static std::string body_of(const std::string& address) { return "stand-in " + address; }

 private:
  StandInInternet() = default;
  void serve();

  std::string veth_;
  bool veth_made_ = false;
  unique_fd ns_, listener_, stop_;
  std::thread server_;
};

}  // namespace boxcar::testing
