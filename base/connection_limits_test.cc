// Connection caps (pure counting and the defaults), and the Listener that enforces them over
// real loopback sockets: refusals at once, and a pause instead of a spin out of descriptors.
#include "base/connection_limits.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/listener.h"
#include "testing/loopback_client.h"

namespace boxcar {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

using testing::connect_from;
using testing::read_to_end;

net::ip::address ip(const char* text) { return net::ip::make_address(text); }

TEST(ConnectionCounterTest, CapsEachClientAddressAndTheListener) {
  ConnectionCounter counter({3, 2});
  auto a = counter.admit(ip("127.0.0.1"));
  auto b = counter.admit(ip("127.0.0.1"));
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = counter.admit(ip("127.0.0.1"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message,
            "too many connections from 127.0.0.1 (at most 2 per client address)");
  auto d = counter.admit(ip("127.0.0.2"));
  ASSERT_TRUE(d.ok());  // another address still gets in
  auto e = counter.admit(ip("127.0.0.3"));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "too many connections (this listener holds at most 3)");
  a->release();
  EXPECT_EQ(counter.open(), 2u);
  EXPECT_EQ(counter.open_from(ip("127.0.0.1")), 1u);
  EXPECT_TRUE(counter.admit(ip("127.0.0.1")).ok());  // and the slot freed is taken again at once
}

TEST(ConnectionCounterTest, CountsIpv6PerSlash64AndMappedIpv4AsIpv4) {
  ConnectionCounter counter({100, 1});
  auto a = counter.admit(ip("2001:db8::1"));
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(counter.admit(ip("2001:db8::ffff:2")).ok());  // same /64: one host
  EXPECT_TRUE(counter.admit(ip("2001:db8:0:1::1")).ok());    // another /64
  auto mapped = counter.admit(ip("::ffff:10.0.0.1"));
  ASSERT_TRUE(mapped.ok());
  EXPECT_FALSE(counter.admit(ip("10.0.0.1")).ok());
}

TEST(ConnectionCounterTest, SlotsGiveBackTheirPlaceOnceWhenMovedOrDestroyed) {
  ConnectionCounter counter({10, 10});
  {
    auto a = counter.admit(ip("127.0.0.1"));
    ASSERT_TRUE(a.ok());
    ConnectionSlot moved = std::move(*a);
    ConnectionSlot other;
    other = std::move(moved);
    EXPECT_EQ(counter.open(), 1u);
  }
  EXPECT_EQ(counter.open(), 0u);
}

TEST(ConnectionLimitsTest, DefaultsLeaveAReserveOfDescriptors) {
  auto small = default_connection_limits(1024, 1, 4096);
  EXPECT_EQ(small.max_connections, 384u);  // (1024 - 256) / 2
  EXPECT_EQ(small.max_per_client, 256u);
  auto proxied = default_connection_limits(1024, 2, 1024);
  EXPECT_EQ(proxied.max_connections, 192u);
  EXPECT_EQ(proxied.max_per_client, 192u);
  auto large = default_connection_limits(1 << 20, 1, 4096);
  EXPECT_EQ(large.max_connections, 4096u);
  EXPECT_EQ(large.max_per_client, 256u);
  EXPECT_EQ(default_connection_limits(64, 1, 4096).max_connections, 16u);
}

// --- Listener, over real loopback sockets --------------------------------------------------

bool eventually(const std::function<bool()>& pred) {
  auto end = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// A listener whose connections are held (open, unanswered) until release_all().
class ListenerTest : public ::testing::Test {
 protected:
  void start(ConnectionLimits limits, bool run_now = true) {
    Listener::Options o;
    o.limits = limits;
    o.http_refusal = true;
    o.name = "test listener";
    o.log = [this](std::string_view line) {
      std::lock_guard lock(mu_);
      log_.emplace_back(line);
    };
    listener_.emplace(io_, o, [this](net::ip::tcp::socket s, ConnectionSlot slot) {
      std::lock_guard lock(mu_);
      held_.emplace_back(std::move(s), std::move(slot));
    });
    auto bound = listener_->listen({ip("127.0.0.1"), 0});
    ASSERT_TRUE(bound.ok()) << bound.error().message;
    port_ = bound->port();
    if (run_now) run();
  }
  void run() {
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    listener_.reset();
    work_.reset();
    {
      std::lock_guard lock(mu_);
      held_.clear();
    }
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  size_t held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  std::vector<std::string> log() {
    std::lock_guard lock(mu_);
    return log_;
  }
  void drop_first() {
    std::lock_guard lock(mu_);
    held_.erase(held_.begin());  // closes it and gives back its slot
  }

  net::io_context io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{io_.get_executor()};
  std::optional<Listener> listener_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::vector<std::pair<net::ip::tcp::socket, ConnectionSlot>> held_;
  std::vector<std::string> log_;
};

TEST_F(ListenerTest, OverACapAClientIsAnswered503AtOnceWhileAnotherAddressGetsIn) {
  start({3, 2});
  int a = connect_from("127.0.0.1", port_), b = connect_from("127.0.0.1", port_);
  ASSERT_TRUE(eventually([&] { return held() == 2; }));
  int c = connect_from("127.0.0.1", port_);
  ASSERT_GE(c, 0);
  std::string refused = read_to_end(c);  // returns only because the listener closed it
  EXPECT_NE(refused.find("HTTP/1.1 503"), std::string::npos) << refused;
  EXPECT_NE(refused.find("too many connections from 127.0.0.1"), std::string::npos) << refused;
  // Control: another address is let in while 127.0.0.1 is full.
  int d = connect_from("127.0.0.2", port_);
  ASSERT_TRUE(eventually([&] { return held() == 3; }));
  int e = connect_from("127.0.0.3", port_);
  EXPECT_NE(read_to_end(e).find("this listener holds at most 3"), std::string::npos);
  // A connection that ends gives its place back.
  drop_first();
  int f = connect_from("127.0.0.1", port_);
  EXPECT_TRUE(eventually([&] { return held() == 3; }));
  EXPECT_EQ(listener_->open_connections(), 3u);
  for (int s : {a, b, c, d, e, f}) ::close(s);
}

size_t open_descriptors() {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (::readdir(d)) ++n;
  ::closedir(d);
  return n - 3;  // ".", ".." and the directory's own
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

TEST_F(ListenerTest, OutOfDescriptorsItPausesInsteadOfSpinningAndThenCatchesUp) {
  start({1000, 1000}, /*run_now=*/false);
  // Forty clients wait in the backlog; then the process may open only ten more descriptors.
  std::vector<int> clients;
  for (int i = 0; i < 40; ++i) clients.push_back(connect_from("127.0.0.1", port_));
  rlimit saved{};
  ::getrlimit(RLIMIT_NOFILE, &saved);
  rlimit low = saved;
  low.rlim_cur = open_descriptors() + 10;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  struct Restore {
    rlimit r;
    ~Restore() { ::setrlimit(RLIMIT_NOFILE, &r); }
  } restore{saved};
  run();
  EXPECT_TRUE(eventually([&] { return !log().empty(); })) << "no pause was logged";
  size_t accepted = held();
  EXPECT_LT(accepted, 40u);
  // A spin would burn a whole CPU second per second; pausing burns next to nothing.
  double before = cpu_seconds();
  std::this_thread::sleep_for(1s);
  double burnt = cpu_seconds() - before;
  EXPECT_LT(burnt, 0.15) << "the accept loop spins on EMFILE";
  ::setrlimit(RLIMIT_NOFILE, &saved);
  EXPECT_TRUE(eventually([&] { return held() == 40; }))
      << held() << " accepted after the limit rose";
  auto lines = log();
  ASSERT_EQ(lines.size(), 1u) << "one line per episode, not one per failed accept";
  EXPECT_NE(lines[0].find("out of file descriptors"), std::string::npos) << lines[0];
  for (int s : clients) ::close(s);
}

}  // namespace
}  // namespace boxcar
