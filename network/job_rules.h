// The nftables scripts of a job network, as text from plain data: the policy table inside the
// job's namespace, the backstop table on the agent machine, and a step's own chain and sets.
// Pure (no I/O), so the rules are unit-tested as text; network/nft.h runs them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "base/host_pattern.h"
#include "network/egress_policy.h"

namespace boxcar::network {

// A job's DNS packets per second to the agent's resolver (and burst); more are dropped.
inline constexpr int kDnsPacketsPerSecond = 500;
// Connections of one job the machine tracks at once (its conntrack table is shared); more new
// ones are dropped.
inline constexpr int kMaxTrackedFlows = 8192;

struct JobRulesInput {
  int slot = 0;
  std::string veth;                    // the host side: "bxj<slot>"
  std::string job_v4, gateway_v4;      // "10.213.0.6", "10.213.0.5"
  std::string job_v6, gateway_v6;      // "" without IPv6
  EgressPolicy policy;
  std::vector<std::string> own_v4, own_v6;  // the agent machine's addresses (no scope, deduplicated)
  size_t refused_set_size = 4096;           // each refusal set's capacity
};

// "boxcar_job_<slot>": the machine's table of a slot, what reclaiming a stale slot deletes.
std::string host_table_name(int slot);
// The machine's end of the slot's veth pair: "bxj<slot>" (within IFNAMSIZ for every slot).
std::string host_link_name(int slot);

// `table inet boxcar` inside the job's namespace (hook output): the policy, and the dynamic sets
// refused4/refused6 (cgroup . l4proto . daddr . dport) and refusedp4/refusedp6 (cgroup .
// l4proto . daddr, for protocols without ports) whose counters report() reads. When a set is
// full, a refusal is still refused, counted by the counter `overflow`.
std::string namespace_table_script(const JobRulesInput& in);

// `table inet boxcar_job_<slot>` on the machine: input from the veth only to the resolver (and
// allow rules), no spoofed sources forwarded, no connection into the veth, public ranges refused
// again, masquerade out.
std::string host_table_script(const JobRulesInput& in);

// A step with an `egress` list: its sets (addresses; address . port for `name:port`), its chain
// (those sets, then the allow rules, then refused) and its entry in the `steps` verdict map.
std::string add_step_script(uint32_t net_class);
std::string remove_step_script(uint32_t net_class);

// Addresses the resolver answered for a name, into a step's sets for `timeout_seconds`; an
// address already there gets the new timeout. `ports`: the ports of the step's patterns that
// matched (none: the address itself, every port).
std::string allow_answer_script(uint32_t net_class, const std::vector<boost::asio::ip::address>& addresses,
                                const std::vector<uint16_t>& ports, bool any_port, uint32_t timeout_seconds);

// Why the job's table refused a destination, for the report: DNS to another server, the step's
// list, the machine's own address, the public ranges, mode none.
std::string refusal_reason(const JobRulesInput& in, bool step_has_list, std::string_view address, uint16_t port,
                           std::string_view protocol);

}  // namespace boxcar::network
