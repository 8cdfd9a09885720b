// Job networks: each job's steps share a network namespace whose only way out is a veth pair to
// the agent machine, NATed there, under the egress policy (network/egress_policy.h), with DNS
// served by the agent on the job's gateway address (network/dns_server.h).
//
//   NetworkHost::make(io, options)       once per process: checks the machine, enables forwarding,
//                                        removes what dead boxcar processes left behind
//   NetworkHost::create_job(id)          a namespace + veth + addresses + routes + nftables + resolver
//   JobNetwork::add_step(name, egress)   a net_cls class id for the step's sandbox (its policy)
//   JobNetwork::report(class)            what the policy refused for that step
//   ~JobNetwork                          the job's table and resolver removed, its slot freed (the
//                                        kernel takes the veth down with the namespace)
//
// Where the rules live, and why:
// - in the job's namespace (table inet boxcar, hook output): the policy itself. Sockets there
//   carry their step's net_cls class id (`meta cgroup`), so a step's own `egress` list, the
//   refusal counters and the log line are per step even though steps share the namespace. Steps
//   run in user namespaces that do not own it, so no step can change these rules (no
//   CAP_NET_ADMIN, no raw sockets there).
// - on the agent machine (table inet boxcar_job_<slot>, hooks input/forward/postrouting): the
//   backstop that holds even if the namespace's rules were gone: only DNS to the gateway reaches
//   the machine itself, no spoofed source address is forwarded, nothing starts a connection into
//   a job, and `public` ranges are refused again; plus the masquerade out.
//
// Addresses: a slot per job from a private pool (a /30 of pool_v4; a /64 of pool_v6 when the host
// has an IPv6 default route), claimed by holding flock(2) on state_dir/slot-<n>.lock, so every
// boxcar process of the machine (agents, serve, run) shares one pool and a slot whose holder died
// is known free, and cleaned, by the next one to look at it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "base/host_pattern.h"
#include "base/result.h"
#include "network/egress_policy.h"
#include "network/egress_report.h"

namespace boxcar::network {

class DnsPolicy;  // network/dns_server.h

struct NetworkOptions {
  EgressPolicy policy;  // mode none: make() refuses; callers give jobs loopback only instead
  std::filesystem::path state_dir = "/run/boxcar/network";
  std::string pool_v4 = "10.213.0.0/16";      // a /30 per job: .1 the gateway, .2 the job
  std::string pool_v6 = "fd62:6f78:6361::/48";  // a /64 per job: ::1 the gateway, ::2 the job
  // DNS answers: TTL given to steps (and the life of an address in a step's allowed set, plus a
  // minute) is the host's, clamped to this range.
  uint32_t min_ttl_seconds = 30, max_ttl_seconds = 300;
  size_t max_dns_in_flight_per_job = 64;  // more queries at once get SERVFAIL
  // Distinct refused destinations a job's report can name; refusals past it are still refused
  // and counted in refused_total(), without their destination.
  size_t max_refused_destinations = 256;
};

class JobNetwork {
 public:
  // Removes the job's nftables table on the machine and its resolver, and frees the slot. The
  // namespace goes with the last process and fd in it, and the kernel deletes the veth with it.
  virtual ~JobNetwork() = default;

  // The job's network namespace (owned by the JobNetwork; executors dup it): loopback up,
  // eth0 with the job's addresses, a default route via the gateway.
  virtual int netns_fd() const = 0;
  // The steps' /etc/resolv.conf: the gateway's resolver only, `options edns0` off, a comment
  // saying what answers there.
  virtual std::string resolv_conf() const = 0;
  // "10.213.0.6", and "fd62:6f78:6361:1::2" or "" without IPv6: the job's own addresses.
  virtual std::string address_v4() const = 0;
  virtual std::string address_v6() const = 0;

  // Before a step's sandbox starts: a net_cls class id its processes must carry
  // (executors::SandboxSpec::net_class), never 0, unique within the job. `egress` none: the
  // agent's policy; a list: only those names (and the addresses the resolver answers for them,
  // as it answers), on top of the operator's --egress-allow.
  virtual Result<uint32_t> add_step(std::string_view step, const std::optional<std::vector<HostPattern>>& egress) = 0;
  // What was refused for the step so far (call it once its sandbox has ended).
  virtual EgressReport report(uint32_t net_class) = 0;
  // The step's rules and sets removed; its class id is not reused within the job.
  virtual void remove_step(uint32_t net_class) = 0;
  // Connections refused so far, every step of the job together.
  virtual uint64_t refused_total() = 0;
  // What the job's resolver asks before and after each lookup (tests drive it directly).
  virtual DnsPolicy& dns_policy() = 0;
};

class NetworkHost {
 public:
  virtual ~NetworkHost() = default;

  // Checks what job networks need (nftables in the kernel, veth, the pools free of the host's
  // own routes), turns on IPv4 forwarding (and IPv6's when the host has an IPv6 default route,
  // keeping router advertisements accepted where they were), starts the resolver, and removes
  // the tables, veths and locks of slots nobody holds. The error says what is missing and how
  // to fix it; ErrorCode::unavailable when the machine cannot do it.
  static Result<std::unique_ptr<NetworkHost>> make(boost::asio::io_context& io, NetworkOptions options);

  // A job's network, in a few milliseconds. Called on the io_context's thread, like every
  // JobNetwork call; the JobNetwork must not outlive its NetworkHost.
  virtual Result<std::unique_ptr<JobNetwork>> create_job(std::string_view job_id) = 0;
  virtual const NetworkOptions& options() const = 0;
};

}  // namespace boxcar::network
