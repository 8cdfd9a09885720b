#include "network/job_rules.h"

#include <gtest/gtest.h>

namespace boxcar::network {
namespace {

JobRulesInput input(EgressMode mode) {
  JobRulesInput in;
  in.slot = 3;
  in.veth = "bxj3";
  in.job_v4 = "10.213.0.14";
  in.gateway_v4 = "10.213.0.13";
  in.policy.mode = mode;
  in.own_v4 = {"127.0.0.1", "192.0.2.2"};
  in.own_v6 = {"::1"};
  return in;
}

bool has(const std::string& script, const std::string& line) { return script.find(line) != std::string::npos; }

TEST(JobRules, NamespaceTableRefusesDnsElsewhereAndOwnAddressesInPublicMode) {
  auto s = namespace_table_script(input(EgressMode::public_));
  EXPECT_TRUE(has(s, "add rule inet boxcar output ip daddr 10.213.0.13 meta l4proto { tcp, udp } th dport 53 accept\n"));
  EXPECT_TRUE(has(s, "add rule inet boxcar output meta l4proto { tcp, udp } th dport 53 jump refuse\n"));
  EXPECT_TRUE(has(s, "elements = { 127.0.0.1, 192.0.2.2 }"));
  EXPECT_TRUE(has(s, "add rule inet boxcar output ip daddr @public4 jump refuse\n"));
  EXPECT_TRUE(has(s, "10.0.0.0/8"));
  // DNS precedes the steps' lists, which precede the allow rules and then the mode.
  // DNS first, then the allow rules, the mode's refusals, and only then the steps' lists.
  EXPECT_LT(s.find("th dport 53 jump refuse"), s.find("output jump allow"));
  EXPECT_LT(s.find("output jump allow"), s.find("@own4 jump refuse"));
  EXPECT_LT(s.find("@public4 jump refuse"), s.find("vmap @steps"));
  // A full refusal set still refuses.
  EXPECT_TRUE(has(s, "add rule inet boxcar refuse counter name \"overflow\" reject with icmpx admin-prohibited\n"));
}

TEST(JobRules, ModeAllRefusesOnlyOwnAddressesAndNoneRefusesEverything) {
  auto all = namespace_table_script(input(EgressMode::all));
  EXPECT_TRUE(has(all, "@own4 jump own"));
  EXPECT_TRUE(has(all, "add rule inet boxcar own jump refuse\n"));
  EXPECT_FALSE(has(all, "@public4 jump refuse"));
  auto none = namespace_table_script(input(EgressMode::none));
  EXPECT_TRUE(has(none, "add rule inet boxcar output jump refuse\n"));
}

TEST(JobRules, AllowRulesComeBeforeRefusalsOnBothSides) {
  auto in = input(EgressMode::public_);
  in.policy.allow.push_back(*parse_allow_rule("10.0.0.5:5432"));
  in.policy.allow.push_back(*parse_allow_rule("172.16.0.0/12"));
  auto ns = namespace_table_script(in);
  EXPECT_TRUE(has(ns, "add rule inet boxcar allow ip daddr 10.0.0.5 meta l4proto { tcp, udp } th dport 5432 accept\n"));
  EXPECT_TRUE(has(ns, "add rule inet boxcar allow ip daddr 172.16.0.0/12 accept\n"));
  auto host = host_table_script(in);
  EXPECT_LT(host.find("out_of_job ip daddr 172.16.0.0/12 accept"), host.find("out_of_job ip daddr @public4"));
  // The machine's own addresses: only a rule naming one address opens it, never a network.
  EXPECT_TRUE(has(ns, "add rule inet boxcar own ip daddr 10.0.0.5 meta l4proto { tcp, udp } th dport 5432 accept\n"));
  EXPECT_FALSE(has(ns, "add rule inet boxcar own ip daddr 172.16.0.0/12"));
  EXPECT_LT(ns.find("output ip daddr @own4 jump own"), ns.find("output jump allow"));
  EXPECT_TRUE(has(host, "from_job ip daddr 10.0.0.5 meta l4proto { tcp, udp } th dport 5432 accept"));
  EXPECT_FALSE(has(host, "from_job ip daddr 172.16.0.0/12"));
}

TEST(JobRules, NothingComesIntoTheJobAndListedStepsKeepToTheirOwnFlows) {
  auto ns = namespace_table_script(input(EgressMode::public_));
  EXPECT_TRUE(has(ns, "add rule inet boxcar input iif \"lo\" accept\n"));
  EXPECT_TRUE(has(ns, "add rule inet boxcar input drop\n"));
  EXPECT_LT(ns.find("output ct state new ct mark set meta cgroup"), ns.find("output ct state established,related accept"));
  EXPECT_LT(ns.find("meta cgroup vmap @listed"), ns.find("output ct state established,related accept"));
  auto add = add_step_script(0xb0000003);
  EXPECT_TRUE(has(add, "add rule inet boxcar est_b0000003 ct mark 0xb0000003 accept\n"));
  auto removed = remove_step_script(0xb0000003);
  EXPECT_TRUE(has(removed, "add element inet boxcar steps { 0xb0000003 : jump refuse }"));
  auto host = host_table_script(input(EgressMode::public_));
  EXPECT_TRUE(has(host, "ct count over"));
  EXPECT_TRUE(has(host, "th dport 53 limit rate over"));
}

TEST(JobRules, HostTableDropsSpoofingAndConnectionsIntoTheJob) {
  auto s = host_table_script(input(EgressMode::public_));
  EXPECT_TRUE(has(s, "add table inet boxcar_job_3\n"));
  EXPECT_TRUE(has(s, "add rule inet boxcar_job_3 out_of_job ip saddr != 10.213.0.14 counter name \"dropped\" drop\n"));
  EXPECT_TRUE(has(s, "add rule inet boxcar_job_3 out_of_job meta nfproto ipv6 counter name \"dropped\" drop\n"));
  EXPECT_TRUE(has(s, "add rule inet boxcar_job_3 forward oifname \"bxj3\" counter name \"dropped\" drop\n"));
  EXPECT_TRUE(has(s, "add rule inet boxcar_job_3 from_job counter name \"dropped\" drop\n"));
  EXPECT_TRUE(has(s, "ip saddr 10.213.0.14 oifname != \"bxj3\" masquerade\n"));
}

TEST(JobRules, StepSetsAndAnswersWithPorts) {
  auto s = add_step_script(0xb0000002);
  EXPECT_TRUE(has(s, "add element inet boxcar steps { 0xb0000002 : jump step_b0000002 }\n"));
  auto a = allow_answer_script(0xb0000002, {boost::asio::ip::make_address("198.51.100.10")}, {443}, false, 90);
  EXPECT_TRUE(has(a, "add element inet boxcar sb0000002_p4 { 198.51.100.10 . 443 timeout 90s }\n"));
  EXPECT_FALSE(has(a, "_a4"));
  EXPECT_TRUE(has(remove_step_script(0xb0000002), "delete chain inet boxcar step_b0000002\n"));
}

TEST(JobRules, RefusalReasons) {
  auto in = input(EgressMode::public_);
  EXPECT_EQ(refusal_reason(in, false, "8.8.8.8", 53, "udp"), "DNS goes only to the job's resolver");
  EXPECT_EQ(refusal_reason(in, true, "198.51.100.10", 80, "tcp"), "not in this step's egress list");
  EXPECT_EQ(refusal_reason(in, true, "10.1.2.3", 80, "tcp"), public_refusal_reason("10.1.2.3"));
  EXPECT_EQ(refusal_reason(in, false, "192.0.2.2", 80, "tcp"), "the agent machine's own address");
  EXPECT_EQ(refusal_reason(in, false, "10.1.2.3", 80, "tcp"), public_refusal_reason("10.1.2.3"));
  EXPECT_FALSE(refusal_reason(in, false, "169.254.169.254", 80, "tcp").empty());
}

}  // namespace
}  // namespace boxcar::network
