// Which slot of the machine's job networks a job holds, from its IPv4 address on the default pool,
// for tests that look at the slot's table and veth from the machine (network/job_rules.h names them).
#pragma once

#include <string>

#include <boost/asio/ip/address_v4.hpp>

#include "network/egress_policy.h"
#include "network/job_network.h"

namespace boxcar::testing {

inline int job_network_slot(const std::string& job_v4) {
  auto pool = network::parse_allow_rule(network::NetworkOptions{}.pool_v4).value();
  auto offset = boost::asio::ip::make_address_v4(job_v4).to_uint() - boost::asio::ip::make_address_v4(pool.address).to_uint();
  return static_cast<int>(offset / 4);  // a /30 per slot
}

}  // namespace boxcar::testing
