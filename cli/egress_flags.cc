#include "cli/egress_flags.h"

namespace boxcar::cli {

std::vector<FlagSpec> with_egress_flags(std::vector<FlagSpec> specs) {
  specs.push_back({"--egress", true, false, ""});
  specs.push_back({"--egress-allow", true, true, ""});
  specs.push_back({"--allow-host-network", false, false, ""});
  specs.push_back({"--job-network-pool", true, false, ""});
  specs.push_back({"--job-network-pool6", true, false, ""});
  return specs;
}

Result<EgressSettings> read_egress_flags(const ParsedFlags& flags) {
  EgressSettings settings;
  settings.allow_host_network = flags.has("--allow-host-network");
  settings.pool_v4 = flags.get("--job-network-pool");
  settings.pool_v6 = flags.get("--job-network-pool6");
  if (auto mode = flags.get("--egress")) {
    auto parsed = network::parse_egress_mode(*mode);
    if (!parsed.ok()) return parsed.error();
    settings.policy.mode = *parsed;
  }
  for (const auto& text : flags.all("--egress-allow")) {
    auto rule = network::parse_allow_rule(text);
    if (!rule.ok()) return rule.error();
    settings.policy.allow.push_back(std::move(*rule));
  }
  if (settings.policy.mode == network::EgressMode::none && !settings.policy.allow.empty()) {
    return Error{"--egress-allow has no effect with --egress none (jobs get loopback only); use --egress public "
                 "or all with it",
                 0, ErrorCode::usage, "egress_allow"};
  }
  return settings;
}

Result<std::unique_ptr<network::NetworkHost>> open_job_networks(boost::asio::io_context& io,
                                                                const EgressSettings& settings, bool isolated) {
  if (!isolated || settings.policy.mode == network::EgressMode::none) return std::unique_ptr<network::NetworkHost>();
  network::NetworkOptions options;
  options.policy = settings.policy;
  if (settings.pool_v4) options.pool_v4 = *settings.pool_v4;
  if (settings.pool_v6) options.pool_v6 = *settings.pool_v6;
  auto host = network::NetworkHost::make(io, std::move(options));
  if (!host.ok()) {
    const Error& e = host.error();
    if (e.subject == "network_pool_v4" || e.subject == "network_pool_v6") {
      const char* flag = e.subject == "network_pool_v4" ? "--job-network-pool" : "--job-network-pool6";
      return Error{e.message + " (" + flag + " CIDR)", e.err, ErrorCode::usage, e.subject};
    }
    return Error{"cannot give jobs a network with a route out: " + e.message +
                     " (--egress none runs jobs with loopback only)",
                 e.err, e.code};
  }
  return std::move(host.value());
}

}  // namespace boxcar::cli
