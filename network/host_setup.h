// What the agent machine must have and do before it can host job networks: its own addresses,
// whether it has IPv6 out, the pools clear of its routes, forwarding on.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"
#include "network/egress_policy.h"

namespace boxcar::network {

// The machine's addresses on every interface (getifaddrs), without scope ids, deduplicated:
// what `public` refuses besides the ranges, snapshot at each job's creation.
void machine_addresses(std::vector<std::string>& v4, std::vector<std::string>& v6);

// Whether the machine has an IPv6 default route (jobs get IPv6 only then).
bool has_ipv6_default_route();

// The error names the route a pool overlaps and what to change. Our own veths ("bxj*") are not
// the machine's routes.
Status check_pool_free(const AllowRule& pool);

// Writes a sysctl under /proc/sys; the error names it.
Status write_sysctl(const std::filesystem::path& path, const std::string& value);

// IPv4 forwarding on, and IPv6's when `ipv6`: interfaces that accept router advertisements
// (accept_ra 1) get accept_ra 2 first, as forwarding would make the kernel ignore them.
Status enable_forwarding(bool ipv6);

}  // namespace boxcar::network
