#include "network/egress_policy.h"

#include <sys/socket.h>

#include <gtest/gtest.h>

#include "network/egress_report.h"

namespace boxcar::network {
namespace {

TEST(EgressPolicy, ModesByName) {
  EXPECT_EQ(parse_egress_mode("none").value(), EgressMode::none);
  EXPECT_EQ(parse_egress_mode("public").value(), EgressMode::public_);
  EXPECT_EQ(parse_egress_mode("all").value(), EgressMode::all);
  auto bad = parse_egress_mode("open");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("none"), std::string::npos);
  EXPECT_EQ(bad.error().subject, "egress");
}

TEST(EgressPolicy, AllowRulesInEveryForm) {
  auto r = parse_allow_rule("10.1.2.3/8").value();
  EXPECT_EQ(r.cidr(), "10.0.0.0/8");  // host bits cleared
  EXPECT_FALSE(r.port);
  auto p = parse_allow_rule("10.0.0.5:5432").value();
  EXPECT_EQ(p.cidr(), "10.0.0.5/32");
  EXPECT_EQ(p.port, 5432);
  EXPECT_EQ(p.text(), "10.0.0.5/32:5432");
  EXPECT_EQ(parse_allow_rule("10.0.0.0/8:443").value().port, 443);
  auto v6 = parse_allow_rule("fd00::5").value();
  EXPECT_EQ(v6.family, AF_INET6);
  EXPECT_EQ(v6.cidr(), "fd00::5/128");
  auto v6p = parse_allow_rule("[fd00::/8]:443").value();
  EXPECT_EQ(v6p.cidr(), "fd00::/8");
  EXPECT_EQ(v6p.port, 443);
  EXPECT_EQ(v6p.text(), "[fd00::/8]:443");
  EXPECT_EQ(parse_allow_rule("[fd00::5]:443").value().cidr(), "fd00::5/128");
}

TEST(EgressPolicy, BadAllowRulesSayWhatIsAccepted) {
  for (const char* bad : {"10.0.0.0/33", "10.0.0.5:0", "10.0.0.5:70000", "example.com", "[fd00::5", "[fd00::5]443",
                          "fd00::/129", "", "10.0.0.5:", "/8"}) {
    auto r = parse_allow_rule(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("10.0.0.5:5432"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().subject, "egress_allow");
  }
}

TEST(EgressPolicy, PublicRefusesPrivateLinkLocalAndMulticastOnly) {
  EXPECT_EQ(public_refusal_reason("10.0.0.5"), "private address (RFC 1918)");
  EXPECT_EQ(public_refusal_reason("172.31.255.1"), "private address (RFC 1918)");
  EXPECT_EQ(public_refusal_reason("192.168.1.1"), "private address (RFC 1918)");
  EXPECT_EQ(public_refusal_reason("169.254.169.254"), "link-local address (cloud metadata)");
  EXPECT_EQ(public_refusal_reason("100.64.0.1"), "shared address space (CGNAT)");
  EXPECT_EQ(public_refusal_reason("224.0.0.251"), "multicast address");
  EXPECT_EQ(public_refusal_reason("127.0.0.1"), "loopback address");
  EXPECT_EQ(public_refusal_reason("fd12::1"), "unique-local address");
  EXPECT_EQ(public_refusal_reason("fe80::1"), "link-local address");
  EXPECT_EQ(public_refusal_reason("ff02::1"), "multicast address");
  EXPECT_EQ(public_refusal_reason("::ffff:10.0.0.1"), "IPv4-mapped address");
  EXPECT_EQ(public_refusal_reason("64:ff9b::a00:5"), "NAT64 address (it can carry a private IPv4 address)");
  EXPECT_EQ(public_refusal_reason("2002:a00:5::1"), "6to4 address (it can carry a private IPv4 address)");
  // Controls: public addresses, and the neighbours of refused ranges.
  for (const char* open : {"93.184.216.34", "172.32.0.1", "100.128.0.1", "198.51.100.10", "2001:db8::1", "fbff::1"}) {
    EXPECT_EQ(public_refusal_reason(open), "") << open;
  }
  EXPECT_EQ(public_refused_v4().size(), 10u);
  EXPECT_EQ(public_refused_v6().front(), "::/127");
}

TEST(EgressReport, OneLineNamingTheMostRefused) {
  EXPECT_EQ(describe({}), "");
  EgressReport r;
  r.refused = {{"10.0.0.5", 5432, "tcp", 3, "", "private address (RFC 1918)"},
               {"93.184.216.34", 443, "tcp", 1, "example.com", "not in this step's egress list"},
               {"fd00::1", 53, "udp", 1, "", ""}};
  r.refused_total = 6;
  EXPECT_EQ(describe(r),
            "egress refused: 3 connections to 10.0.0.5:5432 (private address (RFC 1918)), 1 to "
            "93.184.216.34:443 (example.com: not in this step's egress list), 1 to [fd00::1]:53/udp "
            "and 1 more");
  EgressReport names;
  names.refused_names = {"evil.example (not in any egress list)"};
  EXPECT_EQ(describe(names), "egress refused: lookups of evil.example (not in any egress list)");
}

}  // namespace
}  // namespace boxcar::network
