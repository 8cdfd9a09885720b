// The job network flags of `boxcar run`, `agent` and `serve`: the egress policy (--egress,
// --egress-allow) and whether a step may take the machine's own network (--allow-host-network).
// Parsed and checked in one place, so the commands agree.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "base/result.h"
#include "cli/flags.h"
#include "network/egress_policy.h"
#include "network/job_network.h"

namespace boxcar::cli {

// For the commands' usage texts.
inline constexpr const char* kEgressFlagsUsage =
    "  job networks:\n"
    "  --egress none|public|all  where steps may connect beyond their job: public (the default) is the\n"
    "                           internet, not this machine's addresses nor private, CGNAT, link-local\n"
    "                           (cloud metadata), unique-local or multicast ranges; none: loopback only\n"
    "  --egress-allow CIDR[:PORT]  reachable all the same (repeatable): 10.0.0.5:5432, [fd00::/8]:443\n"
    "  --allow-host-network     steps may ask for network = \"host\": the machine's own network, no policy\n"
    "  --job-network-pool CIDR  jobs' IPv4 addresses, a /30 each (10.213.0.0/16); --job-network-pool6 CIDR:\n"
    "                           IPv6, a /64 each (fd62:6f78:6361::/48); outside the machine's own networks\n";

// `specs` and the job network flags: what a command passes to parse_flags.
std::vector<FlagSpec> with_egress_flags(std::vector<FlagSpec> specs);

struct EgressSettings {
  network::EgressPolicy policy;
  bool allow_host_network = false;
  std::optional<std::string> pool_v4, pool_v6;  // --job-network-pool, --job-network-pool6
};

// Errors (usage) name the flag and the forms it takes.
Result<EgressSettings> read_egress_flags(const ParsedFlags& flags);

// The machine's job networks for an executor that isolates steps (`isolated`); null with
// --egress none or the host executor, whose jobs get loopback only (or the host's). The error
// says what the machine lacks and that --egress none runs jobs without a route out.
Result<std::unique_ptr<network::NetworkHost>> open_job_networks(boost::asio::io_context& io,
                                                                const EgressSettings& settings, bool isolated);

}  // namespace boxcar::cli
