// async_connect_sandbox against real loopback listeners: one that accepts, none, and one too
// busy to accept.
#include "agent/sandbox_connect.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "testing/loopback_sandbox.h"

namespace boxcar::agent {
namespace {

using tcp = boost::asio::ip::tcp;
using namespace std::chrono_literals;

using boxcar::testing::LoopbackSandbox;

// A listener with room for `backlog` + 1 connections in its accept queue; it accepts none.
struct Listener {
  explicit Listener(int backlog) : fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd.get(), backlog), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  // Fills the accept queue with blocking connects (immediate on loopback while there is room):
  // the kernel drops the next SYN, as for a server too busy to accept.
  void fill() {
    for (int i = 0; i < 2; ++i) {
      unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ASSERT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
      queued.push_back(std::move(c));
    }
  }
  unique_fd fd;
  uint16_t port = 0;
  std::vector<unique_fd> queued;
};

class SandboxConnectTest : public ::testing::Test {
 protected:
  // Connects with `timeout`; `events` records "connect" when it ends, in order with the test's.
  void connect(uint16_t port, std::chrono::steady_clock::duration timeout) {
    auto sandbox = std::make_unique<LoopbackSandbox>();
    async_connect_sandbox(io_, *sandbox, port, timeout, [this](Result<tcp::socket> r) {
      events_.push_back("connect");
      result_.emplace(std::move(r));
    });
    // The contract: the sandbox may go right after the call, and `done` never runs inside it.
    sandbox.reset();
    EXPECT_TRUE(events_.empty());
  }

  boost::asio::io_context io_;
  std::vector<std::string> events_;
  std::optional<Result<tcp::socket>> result_;
};

TEST_F(SandboxConnectTest, ConnectsToAListener) {
  Listener server(16);
  connect(server.port, 30s);
  io_.run();
  ASSERT_TRUE(result_ && result_->ok()) << (result_ ? result_->error().message : "no result");
  boost::system::error_code ec;
  EXPECT_EQ(result_->value().remote_endpoint(ec).port(), server.port);
  EXPECT_FALSE(ec);
}

TEST_F(SandboxConnectTest, RefusedPortFailsAtOnce) {
  uint16_t port = Listener(16).port;  // closed again: nothing listens there now
  boost::asio::steady_timer later(io_, 30s);
  later.async_wait([this](boost::system::error_code ec) {
    if (!ec) events_.push_back("timer");
  });
  connect(port, 60s);
  io_.run_one();
  ASSERT_TRUE(result_);
  ASSERT_FALSE(result_->ok());
  EXPECT_EQ(result_->error().err, ECONNREFUSED) << result_->error().message;
  EXPECT_EQ(events_, std::vector<std::string>{"connect"}) << "refused before the 30 s timer, not at the deadline";
}

TEST_F(SandboxConnectTest, FullAcceptQueueNeitherBlocksNorHangs) {
  Listener server(1);
  server.fill();
  connect(server.port, 300ms);
  // A blocking connect would have held the thread inside connect() until the kernel gave up.
  boost::asio::steady_timer meanwhile(io_, 1ms);
  meanwhile.async_wait([this](boost::system::error_code ec) {
    if (!ec) events_.push_back(result_ ? "timer after connect" : "timer");
  });
  io_.run();
  EXPECT_EQ(events_, (std::vector<std::string>{"timer", "connect"}));
  ASSERT_TRUE(result_);
  ASSERT_FALSE(result_->ok());
  EXPECT_EQ(result_->error().err, ETIMEDOUT) << result_->error().message;
}

}  // namespace
}  // namespace boxcar::agent
