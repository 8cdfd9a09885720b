#include "network/host_resolver.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>

#include "testing/dns_upstream.h"
#include "testing/private_hosts_file.h"

namespace boxcar::network {
namespace {

namespace ip = boost::asio::ip;
using namespace std::chrono_literals;

Result<HostAnswer> resolve(HostResolver& r, const std::string& name, int family, Millis timeout = Millis(10000)) {
  auto p = std::make_shared<std::promise<Result<HostAnswer>>>();
  auto f = p->get_future();
  r.resolve(name, family, timeout, [p](Result<HostAnswer> a) { p->set_value(std::move(a)); });
  if (f.wait_for(60s) != std::future_status::ready) return Error("no answer in 60 s");
  return f.get();
}

class HostResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(boxcar::testing::set_private_hosts("192.0.2.10 build-cache.test Alias.Test\n"
                                                   "2001:db8::10 build-cache.test\n"));
    upstream_.add("pkg.test", {ip::make_address("198.51.100.7")}, 123);
    upstream_.silence("slow.test");
    auto r = HostResolver::make(upstream_.server());
    ASSERT_TRUE(r.ok()) << r.error().message;
    resolver_ = std::move(*r);
  }
  boxcar::testing::DnsUpstream upstream_;
  std::unique_ptr<HostResolver> resolver_;
};

TEST_F(HostResolverTest, NamesOfEtcHostsResolveWithoutAskingServers) {
  auto a = resolve(*resolver_, "build-cache.test", AF_INET);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->addresses, std::vector<ip::address>{ip::make_address("192.0.2.10")});
  EXPECT_FALSE(a->nxdomain);
  auto six = resolve(*resolver_, "build-cache.test", AF_INET6);
  ASSERT_TRUE(six.ok());
  EXPECT_EQ(six->addresses, std::vector<ip::address>{ip::make_address("2001:db8::10")});
  auto alias = resolve(*resolver_, "alias.test", AF_INET);
  ASSERT_TRUE(alias.ok());
  EXPECT_EQ(alias->addresses.size(), 1u);
  EXPECT_EQ(upstream_.queries(), 0);
}

TEST_F(HostResolverTest, ServersAnswerWithTheirTtlAndNxdomain) {
  auto a = resolve(*resolver_, "pkg.test", AF_INET);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->addresses, std::vector<ip::address>{ip::make_address("198.51.100.7")});
  EXPECT_EQ(a->ttl_seconds, 123u);
  auto missing = resolve(*resolver_, "missing.test", AF_INET);
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_TRUE(missing->nxdomain);
  EXPECT_TRUE(missing->addresses.empty());
}

TEST_F(HostResolverTest, ATimeoutIsAnErrorGivenOnce) {
  std::atomic<int> calls{0};
  auto p = std::make_shared<std::promise<Result<HostAnswer>>>();
  auto f = p->get_future();
  resolver_->resolve("slow.test", AF_INET, Millis(200), [&calls, p](Result<HostAnswer> a) {
    if (++calls == 1) p->set_value(std::move(a));
  });
  ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
  auto r = f.get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  // Control: the resolver still answers; then, once it is gone, nothing was called twice.
  EXPECT_TRUE(resolve(*resolver_, "pkg.test", AF_INET).ok());
  resolver_.reset();
  EXPECT_EQ(calls, 1);
}

TEST_F(HostResolverTest, DestroyedWithRequestsInFlightAnswersEachOnce) {
  constexpr int n = 20;
  std::atomic<int> calls{0}, errors{0};
  for (int i = 0; i < n; ++i) {
    resolver_->resolve("slow.test", i % 2 ? AF_INET : AF_INET6, Millis(60000), [&](Result<HostAnswer> a) {
      ++calls;
      if (!a.ok()) ++errors;
    });
  }
  resolver_.reset();
  EXPECT_EQ(calls, n);
  EXPECT_EQ(errors, n);
  // Control: a new resolver answers.
  auto r = HostResolver::make(upstream_.server());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(resolve(**r, "build-cache.test", AF_INET).ok());
}

TEST(HostResolverServers, ABadServerListIsAClearError) {
  auto r = HostResolver::make("not an address");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not an address"), std::string::npos);
}

}  // namespace
}  // namespace boxcar::network
