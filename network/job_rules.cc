#include "network/job_rules.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstdio>

namespace boxcar::network {

namespace {

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// An interval set: elements only when there are some (nft rejects `elements = { }`).
std::string set_decl(const std::string& table, const std::string& name, const char* type, bool interval,
                     const std::vector<std::string>& elements) {
  std::string s = "add set inet " + table + " " + name + " { type " + type + ";";
  if (interval) s += " flags interval; auto-merge;";
  if (!elements.empty()) s += " elements = { " + joined(elements) + " };";
  return s + " }\n";
}

bool single_address(const AllowRule& r) { return r.prefix == (r.family == AF_INET6 ? 128u : 32u); }

std::string allow_rule_text(const AllowRule& r) {
  std::string s = r.family == AF_INET6 ? "ip6 daddr " : "ip daddr ";
  s += r.prefix == (r.family == AF_INET6 ? 128u : 32u) ? r.address : r.cidr();
  if (r.port) s += " meta l4proto { tcp, udp } th dport " + std::to_string(*r.port);
  return s + " accept";
}

std::string rule(const std::string& table, const std::string& chain, const std::string& text) {
  return "add rule inet " + table + " " + chain + " " + text + "\n";
}

// The chain every refusal goes through: counted per (class, protocol, destination, port), then a
// TCP reset (exactly one refused packet per connect) or an ICMP error for the rest. The l4proto
// test precedes the update, or a TCP packet would be counted by the next rule too.
std::string refuse_chain() {
  // Without the last two rules a full set would make `update` fail, the rule not match, and the
  // packet fall back to the output chain and out: a step could open the way by filling the set.
  const std::string t = "boxcar", c = "refuse";
  std::string s = "add chain inet boxcar refuse\n";
  for (const char* fam : {"4", "6"}) {
    std::string ip = fam[0] == '4' ? "ip" : "ip6";
    std::string nf = fam[0] == '4' ? "meta nfproto ipv4 " : "meta nfproto ipv6 ";
    std::string key = " { meta cgroup . meta l4proto . " + ip + " daddr . th dport }";
    std::string keyp = " { meta cgroup . meta l4proto . " + ip + " daddr }";
    s += rule(t, c, nf + "meta l4proto tcp update @refused" + std::string(fam) + key + " reject with tcp reset");
    s += rule(t, c, nf + "meta l4proto udp update @refused" + std::string(fam) + key + " reject with icmpx admin-prohibited");
    s += rule(t, c, nf + "update @refusedp" + std::string(fam) + keyp + " reject with icmpx admin-prohibited");
  }
  s += rule(t, c, "meta l4proto tcp counter name \"overflow\" reject with tcp reset");
  s += rule(t, c, "counter name \"overflow\" reject with icmpx admin-prohibited");
  return s;
}

// What the kernel itself sends on a link (neighbour discovery, multicast listener reports): not
// a step's connection, so neither refused nor counted.
const char* kNdp =
    "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, mld-listener-report, mld2-listener-report } accept";

}  // namespace

std::string host_table_name(int slot) { return "boxcar_job_" + std::to_string(slot); }

std::string host_link_name(int slot) { return "bxj" + std::to_string(slot); }

std::string namespace_table_script(const JobRulesInput& in) {
  const std::string t = "boxcar";
  std::string s = "add table inet boxcar\n";
  const std::string size = " flags dynamic; size " + std::to_string(in.refused_set_size) + "; counter; }\n";
  s += "add counter inet boxcar overflow\n";
  s += "add set inet boxcar refused4 { typeof meta cgroup . meta l4proto . ip daddr . th dport;" + size;
  s += "add set inet boxcar refused6 { typeof meta cgroup . meta l4proto . ip6 daddr . th dport;" + size;
  s += "add set inet boxcar refusedp4 { typeof meta cgroup . meta l4proto . ip daddr;" + size;
  s += "add set inet boxcar refusedp6 { typeof meta cgroup . meta l4proto . ip6 daddr;" + size;
  s += set_decl(t, "public4", "ipv4_addr", true, public_refused_v4());
  s += set_decl(t, "public6", "ipv6_addr", true, public_refused_v6());
  s += set_decl(t, "own4", "ipv4_addr", false, in.own_v4);
  s += set_decl(t, "own6", "ipv6_addr", false, in.own_v6);
  s += "add map inet boxcar steps { typeof meta cgroup : verdict; }\n";
  // Steps with a list: their established connections must be their own (the conntrack mark is
  // the class that opened it), or a step could ride a flow another step of the job opened.
  s += "add map inet boxcar listed { typeof meta cgroup : verdict; }\n";
  s += refuse_chain();
  s += "add chain inet boxcar allow\n";
  for (const auto& r : in.policy.allow) s += rule(t, "allow", allow_rule_text(r));
  // The machine's own addresses open only to an allow rule naming one of them exactly: a broad
  // --egress-allow 10.0.0.0/8 must not open the machine's sshd or API on its 10.x address.
  s += "add chain inet boxcar own\n";
  for (const auto& r : in.policy.allow)
    if (single_address(r)) s += rule(t, "own", allow_rule_text(r));
  s += rule(t, "own", "jump refuse");

  // Nothing starts a connection into the job from outside its namespace: not another job, not a
  // step on the host's network, not a stale NAT entry of the slot's previous job. Previews and
  // ready checks come in on loopback.
  s += "add chain inet boxcar input { type filter hook input priority filter; policy accept; }\n";
  s += rule(t, "input", "iif \"lo\" accept");
  s += rule(t, "input", "ct state established,related accept");
  s += rule(t, "input", "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept");
  s += rule(t, "input", "drop");

  const std::string o = "output";
  s += "add chain inet boxcar output { type filter hook output priority filter; policy accept; }\n";
  s += rule(t, o, "oif \"lo\" accept");
  s += rule(t, o, "ct state new ct mark set meta cgroup");
  s += rule(t, o, "ct state established,related meta cgroup vmap @listed");
  s += rule(t, o, "ct state established,related accept");
  s += rule(t, o, kNdp);
  s += rule(t, o, "ip daddr " + in.gateway_v4 + " meta l4proto { tcp, udp } th dport 53 accept");
  if (!in.gateway_v6.empty())
    s += rule(t, o, "ip6 daddr " + in.gateway_v6 + " meta l4proto { tcp, udp } th dport 53 accept");
  s += rule(t, o, "meta l4proto { tcp, udp } th dport 53 jump refuse");
  // The machine, the operator's allow rules, what the mode refuses everywhere, then a step's own
  // list: a name answered with a private or the machine's own address (DNS rebinding) stays
  // refused.
  s += rule(t, o, "ip daddr @own4 jump own");
  s += rule(t, o, "ip6 daddr @own6 jump own");
  s += rule(t, o, "jump allow");
  if (in.policy.mode == EgressMode::public_) {
    s += rule(t, o, "ip daddr @public4 jump refuse");
    s += rule(t, o, "ip6 daddr @public6 jump refuse");
  }
  s += rule(t, o, "meta cgroup vmap @steps");
  if (in.policy.mode == EgressMode::none) s += rule(t, o, "jump refuse");
  return s;
}

std::string host_table_script(const JobRulesInput& in) {
  const std::string t = host_table_name(in.slot);
  const std::string veth = "\"" + in.veth + "\"";
  std::string s = "add table inet " + t + "\n";
  s += "add counter inet " + t + " dropped\n";
  s += set_decl(t, "public4", "ipv4_addr", true, public_refused_v4());
  s += set_decl(t, "public6", "ipv6_addr", true, public_refused_v6());

  // Only the resolver of the machine is reachable from the job (and what the operator allowed).
  s += "add chain inet " + t + " input { type filter hook input priority filter - 10; policy accept; }\n";
  s += "add chain inet " + t + " from_job\n";
  s += rule(t, "input", "iifname " + veth + " jump from_job");
  s += rule(t, "from_job", "ct state established,related accept");
  s += rule(t, "from_job", kNdp);
  // The resolver answers on the agent's one io thread: a job gets a fair share of it.
  s += rule(t, "from_job", "meta l4proto { tcp, udp } th dport 53 limit rate over " +
                               std::to_string(kDnsPacketsPerSecond) + "/second burst " +
                               std::to_string(kDnsPacketsPerSecond) + " packets counter name \"dropped\" drop");
  s += rule(t, "from_job", "ip daddr " + in.gateway_v4 + " meta l4proto { tcp, udp } th dport 53 accept");
  if (!in.gateway_v6.empty())
    s += rule(t, "from_job", "ip6 daddr " + in.gateway_v6 + " meta l4proto { tcp, udp } th dport 53 accept");
  for (const auto& r : in.policy.allow)
    if (single_address(r)) s += rule(t, "from_job", allow_rule_text(r));
  s += rule(t, "from_job", "counter name \"dropped\" drop");

  s += "add chain inet " + t + " forward { type filter hook forward priority filter - 10; policy accept; }\n";
  s += "add chain inet " + t + " out_of_job\n";
  s += rule(t, "forward", "iifname " + veth + " jump out_of_job");
  // Nothing starts a connection into a job: not the machine's other jobs, not the outside.
  s += rule(t, "forward", "oifname " + veth + " ct state established,related accept");
  s += rule(t, "forward", "oifname " + veth + " counter name \"dropped\" drop");
  const std::string o = "out_of_job";
  s += rule(t, o, "ip saddr != " + in.job_v4 + " counter name \"dropped\" drop");
  s += rule(t, o, in.job_v6.empty() ? "meta nfproto ipv6 counter name \"dropped\" drop"
                                    : "ip6 saddr != " + in.job_v6 + " counter name \"dropped\" drop");
  // What the job sends on a flow it opened (a download's ACKs): past the spoofing check, nothing
  // more to decide.
  s += rule(t, o, "ct state established,related accept");
  // The machine's connection tracking table is shared: one job may not fill it.
  s += rule(t, o, "ct state new ct count over " + std::to_string(kMaxTrackedFlows) + " counter name \"dropped\" drop");
  for (const auto& r : in.policy.allow) s += rule(t, o, allow_rule_text(r));
  if (in.policy.mode == EgressMode::none) s += rule(t, o, "counter name \"dropped\" drop");
  if (in.policy.mode == EgressMode::public_) {
    s += rule(t, o, "ip daddr @public4 counter name \"dropped\" drop");
    s += rule(t, o, "ip6 daddr @public6 counter name \"dropped\" drop");
  }

  s += "add chain inet " + t + " postrouting { type nat hook postrouting priority srcnat; policy accept; }\n";
  s += rule(t, "postrouting", "ip saddr " + in.job_v4 + " oifname != " + veth + " masquerade");
  if (!in.job_v6.empty()) s += rule(t, "postrouting", "ip6 saddr " + in.job_v6 + " oifname != " + veth + " masquerade");
  return s;
}

std::string add_step_script(uint32_t net_class) {
  const std::string t = "boxcar", h = hex(net_class), chain = "step_" + h;
  std::string s;
  s += "add set inet boxcar s" + h + "_a4 { type ipv4_addr; flags timeout; }\n";
  s += "add set inet boxcar s" + h + "_a6 { type ipv6_addr; flags timeout; }\n";
  s += "add set inet boxcar s" + h + "_p4 { type ipv4_addr . inet_service; flags timeout; }\n";
  s += "add set inet boxcar s" + h + "_p6 { type ipv6_addr . inet_service; flags timeout; }\n";
  s += "add chain inet boxcar " + chain + "\n";
  s += rule(t, chain, "ip daddr @s" + h + "_a4 accept");
  s += rule(t, chain, "ip6 daddr @s" + h + "_a6 accept");
  s += rule(t, chain, "meta l4proto { tcp, udp } ip daddr . th dport @s" + h + "_p4 accept");
  s += rule(t, chain, "meta l4proto { tcp, udp } ip6 daddr . th dport @s" + h + "_p6 accept");
  s += rule(t, chain, "jump refuse");
  s += "add chain inet boxcar est_" + h + "\n";
  s += rule(t, "est_" + h, "ct mark 0x" + h + " accept");
  s += rule(t, "est_" + h, "jump refuse");
  s += "add element inet boxcar steps { 0x" + h + " : jump " + chain + " }\n";
  s += "add element inet boxcar listed { 0x" + h + " : jump est_" + h + " }\n";
  return s;
}

std::string remove_step_script(uint32_t net_class) {
  const std::string h = hex(net_class);
  // A process of the step that outlived its end (a kill on its way) stays under a list: empty.
  std::string s = "delete element inet boxcar steps { 0x" + h + " }\n";
  s += "add element inet boxcar steps { 0x" + h + " : jump refuse }\n";
  s += "delete element inet boxcar listed { 0x" + h + " }\n";
  s += "add element inet boxcar listed { 0x" + h + " : jump refuse }\n";
  s += "delete chain inet boxcar step_" + h + "\n";
  s += "delete chain inet boxcar est_" + h + "\n";
  for (const char* k : {"_a4", "_a6", "_p4", "_p6"}) s += "delete set inet boxcar s" + h + k + "\n";
  return s;
}

std::string allow_answer_script(uint32_t net_class, const std::vector<boost::asio::ip::address>& addresses,
                                const std::vector<uint16_t>& ports, bool any_port, uint32_t timeout_seconds) {
  const std::string h = hex(net_class), to = " timeout " + std::to_string(timeout_seconds) + "s";
  std::string s;
  auto refresh = [&](const std::string& set, const std::string& elem) {
    // add + delete + add in one transaction: the element exists afterwards with the new timeout,
    // whether or not it was there (a plain add keeps an existing element's old timeout).
    const std::string e = " inet boxcar " + set + " { " + elem;
    s += "add element" + e + to + " }\n";
    s += "delete element" + e + " }\n";
    s += "add element" + e + to + " }\n";
  };
  for (const auto& a : addresses) {
    const char* fam = a.is_v4() ? "4" : "6";
    if (any_port) refresh("s" + h + "_a" + fam, a.to_string());
    for (uint16_t p : ports) refresh("s" + h + "_p" + fam, a.to_string() + " . " + std::to_string(p));
  }
  return s;
}

std::string refusal_reason(const JobRulesInput& in, bool step_has_list, std::string_view address, uint16_t port,
                           std::string_view protocol) {
  bool dns = port == 53 && (protocol == "tcp" || protocol == "udp");
  if (dns) return "DNS goes only to the job's resolver";
  const auto& own = address.find(':') == std::string_view::npos ? in.own_v4 : in.own_v6;
  if (in.policy.mode != EgressMode::none && std::find(own.begin(), own.end(), address) != own.end())
    return "the agent machine's own address";
  if (in.policy.mode == EgressMode::public_) {
    auto why = public_refusal_reason(address);
    if (!why.empty()) return why;
  }
  if (step_has_list) return "not in this step's egress list";
  if (in.policy.mode == EgressMode::none) return "the job's egress policy is none";
  return public_refusal_reason(address);
}

}  // namespace boxcar::network
