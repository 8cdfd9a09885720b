#include "network/job_network.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <unordered_map>

#include "base/unique_fd.h"
#include "network/dns_server.h"
#include "network/host_resolver.h"
#include "network/host_setup.h"
#include "network/job_rules.h"
#include "network/netlink.h"
#include "network/nft.h"
#include "network/slot_pool.h"

namespace boxcar::network {

namespace {

namespace ip = boost::asio::ip;

constexpr uint32_t kClassBase = 0xb0000000;  // net_cls major 0xb000: boxcar's steps
constexpr int kPeerIndex = 2;                // eth0 in a namespace that had only lo
constexpr size_t kMaxNames = 4096, kMaxRefusedNames = 32;

Error sys_error(const std::string& what) {
  int e = errno;
  return Error{"job network: " + what + ": " + std::strerror(e), e, ErrorCode::unavailable};
}

bool kernel_at_least(int major, int minor) {
  utsname u{};
  if (::uname(&u) != 0) return false;
  int ma = 0, mi = 0;
  if (std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

// The slot's addresses: the n-th /30 of the v4 pool, the n-th /64 of the v6 pool.
struct SlotAddresses {
  ip::address_v4 gateway4, job4;
  std::optional<ip::address_v6> gateway6, job6;
};

class NetworkHostImpl;

class JobNetworkImpl final : public JobNetwork, public DnsPolicy {
 public:
  JobNetworkImpl(NetworkHostImpl& host, Slot slot) : host_(host), slot_(std::move(slot)) {}
  ~JobNetworkImpl() override;

  int netns_fd() const override { return ns_.get(); }
  std::string resolv_conf() const override;
  std::string address_v4() const override { return rules_.job_v4; }
  std::string address_v6() const override { return rules_.job_v6; }
  Result<uint32_t> add_step(std::string_view step, const std::optional<std::vector<HostPattern>>& egress) override;
  EgressReport report(uint32_t net_class) override;
  void remove_step(uint32_t net_class) override;
  uint64_t refused_total() override;
  DnsPolicy& dns_policy() override { return *this; }

  std::optional<std::string> refuse(std::string_view name) override;
  void answered(std::string_view name, const std::vector<ip::address>& addresses, uint32_t ttl_seconds) override;

  Status build(const SlotAddresses& a);

 private:
  struct Step {
    std::string name;
    std::optional<std::vector<HostPattern>> egress;
  };
  Status make_namespace(std::optional<Netlink>& inside);
  std::vector<CountedElement> refused_elements();
  void label_machine_addresses();

  NetworkHostImpl& host_;
  Slot slot_;
  std::string veth_;
  bool table_made_ = false;
  unique_fd ns_;
  // An nftables context in the job's namespace, for one operation: a context held per job would
  // hold a low descriptor per job, and libnftables needs one (Nft::open).
  Result<Nft> nft();
  JobRulesInput rules_;
  std::unique_ptr<DnsServer> dns_;
  std::map<uint32_t, Step> steps_;
  uint32_t next_class_ = 1;
  std::unordered_map<std::string, std::string> names_;  // address -> a name it answered for
  // (class, ports, addresses) of an answer put in a step's sets -> until when that is fresh.
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> fresh_;
  std::deque<std::string> name_order_;
  std::vector<std::string> refused_names_;
};

class NetworkHostImpl final : public NetworkHost {
 public:
  NetworkHostImpl(boost::asio::io_context& io, NetworkOptions options) : io_(io), options_(std::move(options)) {}

  Result<std::unique_ptr<JobNetwork>> create_job(std::string_view job_id) override;
  const NetworkOptions& options() const override { return options_; }

  Status init();
  void reclaim(int slot);
  SlotAddresses addresses(int slot) const;

  boost::asio::io_context& io_;
  NetworkOptions options_;
  AllowRule pool4_, pool6_;
  bool ipv6_ = false;
  std::optional<Nft> nft_;
  std::optional<Netlink> netlink_;
  std::optional<SlotPool> slots_;
  std::unique_ptr<HostResolver> resolver_;
};

// ---- NetworkHost

SlotAddresses NetworkHostImpl::addresses(int slot) const {
  SlotAddresses a;
  uint32_t base = ip::make_address_v4(pool4_.address).to_uint() + static_cast<uint32_t>(slot) * 4;
  a.gateway4 = ip::address_v4(base + 1);
  a.job4 = ip::address_v4(base + 2);
  if (ipv6_) {
    auto bytes = ip::make_address_v6(pool6_.address).to_bytes();
    uint64_t hi = 0;
    for (int i = 0; i < 8; ++i) hi = hi << 8 | bytes[i];
    hi += static_cast<uint64_t>(slot);
    for (int i = 7; i >= 0; --i, hi >>= 8) bytes[i] = static_cast<unsigned char>(hi & 0xff);
    bytes[15] = 1;
    a.gateway6 = ip::address_v6(bytes);
    bytes[15] = 2;
    a.job6 = ip::address_v6(bytes);
  }
  return a;
}

void NetworkHostImpl::reclaim(int slot) {
  (void)nft_->run("delete table inet " + host_table_name(slot));
  (void)netlink_->delete_link(host_link_name(slot));
}

Status NetworkHostImpl::init() {
  if (options_.policy.mode == EgressMode::none)
    return Error{"job networks: the egress policy is none, so jobs get loopback only and no network is made", 0,
                 ErrorCode::usage, "egress"};
  if (!kernel_at_least(5, 15))
    return Error{"job networks need Linux 5.15 or later: on older kernels giving steps a net_cls class turns off "
                 "cgroup v2 socket matching for the whole machine (systemd's IP accounting and firewalls)",
                 0, ErrorCode::unavailable};
  if (::geteuid() != 0)
    return Error{"job networks need root (veth pairs, nftables, forwarding); run as root or use --egress none", 0,
                 ErrorCode::unavailable};
  auto p4 = parse_allow_rule(options_.pool_v4);
  if (!p4 || p4->family != AF_INET || p4->prefix > 30 || p4->port)
    return Error{"job networks: pool_v4 \"" + options_.pool_v4 + "\" must be an IPv4 network of /30 or larger",
                 0, ErrorCode::usage, "network_pool_v4"};
  auto p6 = parse_allow_rule(options_.pool_v6);
  if (!p6 || p6->family != AF_INET6 || p6->prefix > 64 || p6->port)
    return Error{"job networks: pool_v6 \"" + options_.pool_v6 + "\" must be an IPv6 network of /64 or larger",
                 0, ErrorCode::usage, "network_pool_v6"};
  pool4_ = *p4;
  pool6_ = *p6;
  ipv6_ = has_ipv6_default_route();
  if (auto s = check_pool_free(pool4_); !s) return s;
  if (ipv6_)
    if (auto s = check_pool_free(pool6_); !s) return s;

  auto nft = Nft::open();
  if (!nft) return nft.error();
  nft_.emplace(std::move(*nft));
  auto tables = nft_->inet_tables();
  if (!tables)
    return Error{"job networks need nftables in the kernel (nf_tables): " + tables.error().message, 0,
                 ErrorCode::unavailable};
  auto nl = Netlink::open();
  if (!nl) return nl.error();
  netlink_.emplace(std::move(*nl));
  if (auto s = enable_forwarding(ipv6_); !s) return s;

  // A slot is a /30 and a /64; link names "bxj<n>" must stay within IFNAMSIZ.
  int capacity = std::min<int>(1 << std::min(16u, 30 - pool4_.prefix), 1 << std::min(16u, 64 - pool6_.prefix));
  slots_.emplace(options_.state_dir, capacity, [this](int n) { reclaim(n); });
  if (auto s = slots_->prepare(); !s) return s;
  // What a dead process left: tables and veths of slots whose lock file may be gone too.
  std::vector<int> found;
  for (const auto& t : *tables)
    if (t.starts_with("boxcar_job_")) found.push_back(std::atoi(t.c_str() + 11));
  if (struct if_nameindex* links = ::if_nameindex()) {
    for (auto* l = links; l->if_index != 0; ++l)
      if (std::strncmp(l->if_name, "bxj", 3) == 0) found.push_back(std::atoi(l->if_name + 3));
    ::if_freenameindex(links);
  }
  slots_->reclaim_free(found);

  auto resolver = HostResolver::make();
  if (!resolver) return resolver.error();
  resolver_ = std::move(*resolver);
  return {};
}

Result<std::unique_ptr<JobNetwork>> NetworkHostImpl::create_job(std::string_view) {
  auto slot = slots_->claim();
  if (!slot) return slot.error();
  int n = slot->number;
  auto job = std::make_unique<JobNetworkImpl>(*this, std::move(*slot));
  if (auto s = job->build(addresses(n)); !s) return s.error();  // ~JobNetworkImpl undoes the rest
  return std::unique_ptr<JobNetwork>(std::move(job));
}

// ---- JobNetwork

// unshare/setns act on the calling thread only: it steps into a new namespace, leaves there a
// netlink socket and an nftables context bound to it, and steps back, without a fork.
Status JobNetworkImpl::make_namespace(std::optional<Netlink>& inside) {
  unique_fd back(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!back) return sys_error("opening the current network namespace");
  if (::unshare(CLONE_NEWNET) != 0) return sys_error("unshare(CLONE_NEWNET)");
  Status status;
  {
    auto nl = Netlink::open();
    if (nl) {
      inside.emplace(std::move(*nl));
      status = inside->set_up("lo");
    } else {
      status = nl.error();
    }
    // As executors/native/network.cc does for a loopback-only namespace: steps bind low ports
    // and ping without privileges; and no router advertisement changes the job's routes.
    (void)write_sysctl("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");
    (void)write_sysctl("/proc/sys/net/ipv4/ping_group_range", "0 2147483647");
    (void)write_sysctl("/proc/sys/net/ipv6/conf/default/accept_ra", "0");
    ns_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!ns_ && status) status = sys_error("opening the job's network namespace");
  }
  if (::setns(back.get(), CLONE_NEWNET) != 0) {
    // Left in the job's namespace, this thread would run everything after here in it.
    std::fprintf(stderr, "boxcar: fatal: cannot return to the agent's network namespace: %s\n", std::strerror(errno));
    std::abort();
  }
  return status;
}

Result<Nft> JobNetworkImpl::nft() {
  unique_fd back(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!back) return sys_error("opening the current network namespace");
  if (::setns(ns_.get(), CLONE_NEWNET) != 0) return sys_error("entering the job's network namespace");
  auto nft = Nft::open();
  if (::setns(back.get(), CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "boxcar: fatal: cannot return to the agent's network namespace: %s\n", std::strerror(errno));
    std::abort();
  }
  return nft;
}

Status JobNetworkImpl::build(const SlotAddresses& a) {
  const auto& opt = host_.options_;
  veth_ = host_link_name(slot_.number);
  rules_.slot = slot_.number;
  rules_.veth = veth_;
  rules_.policy = opt.policy;
  rules_.refused_set_size = opt.max_refused_destinations;
  rules_.gateway_v4 = a.gateway4.to_string();
  rules_.job_v4 = a.job4.to_string();
  if (a.job6) {
    rules_.gateway_v6 = a.gateway6->to_string();
    rules_.job_v6 = a.job6->to_string();
  }

  std::optional<Netlink> inside;
  if (auto s = make_namespace(inside); !s) return s;

  auto& nl = *host_.netlink_;
  auto made = nl.create_veth(veth_, "eth0", ns_.get(), kPeerIndex);
  if (!made && made.error().err == EEXIST) {
    // The slot's last job ended a moment ago and the kernel has not finished taking its
    // namespace, with this link, down (see ~JobNetworkImpl); or its holder died. Ours now.
    (void)nl.delete_link(veth_);
    made = nl.create_veth(veth_, "eth0", ns_.get(), kPeerIndex);
  }
  if (!made) return made;
  int index = static_cast<int>(::if_nametoindex(veth_.c_str()));
  if (index == 0) return sys_error("finding " + veth_);
  if (auto s = nl.add_address(index, a.gateway4, 30); !s) return s;
  if (a.gateway6)
    if (auto s = nl.add_address(index, *a.gateway6, 64); !s) return s;
  // The link must never take a router advertisement from the job as the machine's route.
  (void)write_sysctl("/proc/sys/net/ipv6/conf/" + veth_ + "/accept_ra", "0");
  if (auto s = nl.set_up(veth_); !s) return s;

  if (auto s = inside->add_address(kPeerIndex, a.job4, 30); !s) return s;
  if (a.job6)
    if (auto s = inside->add_address(kPeerIndex, *a.job6, 64); !s) return s;
  if (auto s = inside->set_up("eth0"); !s) return s;
  if (auto s = inside->add_route(kPeerIndex, ip::address_v4::any(), 0, ip::address(a.gateway4)); !s) return s;
  if (a.gateway6)
    if (auto s = inside->add_route(kPeerIndex, ip::address_v6::any(), 0, ip::address(*a.gateway6)); !s) return s;

  machine_addresses(rules_.own_v4, rules_.own_v6);
  table_made_ = true;  // a failed transaction leaves nothing; deleting nothing is harmless
  if (auto s = host_.nft_->run(host_table_script(rules_)); !s) return s;
  auto nft_in = nft();
  if (!nft_in) return nft_in.error();
  if (auto s = nft_in->run(namespace_table_script(rules_)); !s) return s;

  DnsServerOptions dns;
  dns.listen.push_back(a.gateway4);
  if (a.gateway6) dns.listen.emplace_back(*a.gateway6);
  dns.min_ttl_seconds = opt.min_ttl_seconds;
  dns.max_ttl_seconds = opt.max_ttl_seconds;
  dns.max_in_flight = opt.max_dns_in_flight_per_job;
  auto server = DnsServer::make(host_.io_, *host_.resolver_, *this, std::move(dns));
  if (!server) return server.error();
  dns_ = std::move(*server);
  return {};
}

JobNetworkImpl::~JobNetworkImpl() {
  dns_.reset();
  if (table_made_) (void)host_.nft_->run("delete table inet " + host_table_name(slot_.number));
  // The host end goes, and the namespace's eth0 with it; the namespace itself with its last user.
  // The veth is not deleted here: deleting one waits ~35 ms for the kernel's RCU grace period,
  // which would stall the io thread (and the exit of `boxcar run`). Its other end is in the
  // job's namespace, so the kernel deletes both when it takes the namespace down, on a work
  // queue of its own, once the last reference (these fds, the rules' netlink socket) is gone.
  ns_.reset();
  host_.slots_->release(std::move(slot_));
}

std::string JobNetworkImpl::resolv_conf() const {
  std::string s =
      "# boxcar: the job's resolver, served by the agent on the job's gateway. It answers through the\n"
      "# agent machine's own resolution, under the job's egress policy; no other DNS server is reachable.\n";
  s += "nameserver " + rules_.gateway_v4 + "\n";
  if (!rules_.gateway_v6.empty()) s += "nameserver " + rules_.gateway_v6 + "\n";
  return s;
}

Result<uint32_t> JobNetworkImpl::add_step(std::string_view step, const std::optional<std::vector<HostPattern>>& egress) {
  if (next_class_ > 0xffff)
    return Error{"job network: more than 65535 steps in one job", 0, ErrorCode::limit_exceeded};
  uint32_t net_class = kClassBase | next_class_++;
  if (egress) {
    auto n = nft();
    if (!n) return n.error();
    if (auto s = n->run(add_step_script(net_class)); !s) return s.error();
  }
  steps_[net_class] = Step{std::string(step), egress};
  return net_class;
}

void JobNetworkImpl::remove_step(uint32_t net_class) {
  auto it = steps_.find(net_class);
  if (it == steps_.end()) return;
  if (it->second.egress)
    if (auto n = nft()) (void)n->run(remove_step_script(net_class));
  steps_.erase(it);
}

std::vector<CountedElement> JobNetworkImpl::refused_elements() {
  std::vector<CountedElement> all;
  auto n = nft();
  if (!n) return all;
  for (const char* set : {"refused4", "refused6", "refusedp4", "refusedp6"}) {
    auto e = n->counted_elements("boxcar", set);
    if (e) all.insert(all.end(), e->begin(), e->end());
  }
  return all;
}

EgressReport JobNetworkImpl::report(uint32_t net_class) {
  EgressReport r;
  auto step = steps_.find(net_class);
  bool has_list = step != steps_.end() && step->second.egress.has_value();
  auto refused = refused_elements();
  if (!refused.empty()) label_machine_addresses();
  for (auto& e : refused) {
    if (e.net_class != net_class || e.packets == 0) continue;
    RefusedDestination d;
    d.address = e.address;
    d.port = e.port;
    d.protocol = e.protocol;
    d.count = e.packets;
    if (auto n = names_.find(e.address); n != names_.end()) d.name = n->second;
    d.reason = refusal_reason(rules_, has_list, d.address, d.port, d.protocol);
    r.refused_total += d.count;
    r.refused.push_back(std::move(d));
  }
  std::stable_sort(r.refused.begin(), r.refused.end(), [](const auto& a, const auto& b) { return a.count > b.count; });
  if (has_list) r.refused_names = refused_names_;
  return r;
}

void JobNetworkImpl::label_machine_addresses() {
  // The snapshot taken at the job's start misses addresses the machine gained since: the kernel
  // gives the job's own link its IPv6 link-local address only once the link's carrier is seen,
  // up to a second later, and an interface may come up during the job. The rules refuse them
  // either way (the machine's table takes nothing from a job but DNS); this names them right.
  std::vector<std::string> v4, v6;
  machine_addresses(v4, v6);
  for (auto [now, known] : {std::pair{&v4, &rules_.own_v4}, std::pair{&v6, &rules_.own_v6}}) {
    for (auto& a : *now)
      if (!std::binary_search(known->begin(), known->end(), a)) known->insert(std::upper_bound(known->begin(), known->end(), a), a);
  }
}

uint64_t JobNetworkImpl::refused_total() {
  uint64_t total = 0;
  for (const auto& e : refused_elements()) total += e.packets;
  if (auto n = nft())
    if (auto overflow = n->counter_packets("boxcar", "overflow")) total += *overflow;
  return total;
}

std::optional<std::string> JobNetworkImpl::refuse(std::string_view name) {
  auto note = [&](std::string why) {
    // A stub resolver asks A and AAAA, then again per search domain and retry: one entry a name.
    std::string entry = std::string(name) + " (" + why + ")";
    if (refused_names_.size() < kMaxRefusedNames &&
        std::find(refused_names_.begin(), refused_names_.end(), entry) == refused_names_.end()) {
      refused_names_.push_back(std::move(entry));
    }
    return why;
  };
  if (rules_.policy.mode == EgressMode::none) return note("the job's egress policy is none");
  if (steps_.empty()) return std::nullopt;
  for (const auto& [_, step] : steps_) {
    if (!step.egress) return std::nullopt;
    for (const auto& p : *step.egress)
      if (host_pattern_matches(p, name)) return std::nullopt;
  }
  return note("not in any step's egress list");
}

void JobNetworkImpl::answered(std::string_view name, const std::vector<ip::address>& addresses, uint32_t ttl_seconds) {
  std::string script;
  for (const auto& [net_class, step] : steps_) {
    if (!step.egress) continue;
    bool any_port = false;
    std::vector<uint16_t> ports;
    for (const auto& p : *step.egress) {
      if (!host_pattern_matches(p, name)) continue;
      if (p.port) ports.push_back(*p.port);
      else any_port = true;
    }
    if (!any_port && ports.empty()) continue;
    // The same answer again within half its TTL: the set's entries still have more than half
    // their life; one nft transaction per repeated query would let a step keep the io thread busy.
    std::string key = std::to_string(net_class) + (any_port ? "*" : "");
    for (uint16_t p : ports) key += ":" + std::to_string(p);
    for (const auto& a : addresses) key += " " + a.to_string();
    auto now = std::chrono::steady_clock::now();
    if (auto it = fresh_.find(key); it != fresh_.end() && now < it->second) continue;
    if (fresh_.size() >= kMaxNames) fresh_.clear();
    fresh_[key] = now + std::chrono::seconds(ttl_seconds / 2);
    script += allow_answer_script(net_class, addresses, ports, any_port, ttl_seconds + 60);
  }
  // The addresses must be in the sets before the answer leaves: the step connects right after.
  if (!script.empty())
    if (auto n = nft()) (void)n->run(script);
  for (const auto& a : addresses) {
    auto text = a.to_string();
    if (names_.try_emplace(text, name).second) name_order_.push_back(text);
    if (name_order_.size() > kMaxNames) {
      names_.erase(name_order_.front());
      name_order_.pop_front();
    }
  }
}

}  // namespace

Result<std::unique_ptr<NetworkHost>> NetworkHost::make(boost::asio::io_context& io, NetworkOptions options) {
  auto host = std::make_unique<NetworkHostImpl>(io, std::move(options));
  if (auto s = host->init(); !s) return s.error();
  return std::unique_ptr<NetworkHost>(std::move(host));
}

}  // namespace boxcar::network
