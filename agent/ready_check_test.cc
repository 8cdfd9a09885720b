// Ready checks against a real server in a real (host) sandbox.
#include "agent/ready_check.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "executors/host/host_executor.h"

namespace boxcar::agent {
namespace {

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// A listener with `backlog` 1 that accepts nothing, and the two connections that fill its queue:
// the kernel drops the next SYN, as for a server too busy to accept.
struct BusyListener {
  BusyListener() : fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd.get(), 1);
    socklen_t len = sizeof a;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    for (unique_fd& q : queued) {
      q.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      EXPECT_EQ(::connect(q.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    }
  }
  unique_fd fd;
  int port = 0;
  unique_fd queued[2];
};

class ReadyCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    executor_ = executors::make_host_executor(io_);
    auto job = executor_->prepare({"ready-check-test", "/tmp"});
    ASSERT_TRUE(job.ok()) << job.error().message;
    job_ = std::move(job).value();
    executors::SandboxSpec spec;
    spec.name = "ready";
    auto sb = job_->start(spec);
    ASSERT_TRUE(sb.ok()) << sb.error().message;
    sandbox_ = std::move(sb).value();
  }
  void TearDown() override {
    if (sandbox_) sandbox_->destroy();
    if (job_) job_->destroy();
  }

  // Repeats the check until it passes or `tries` attempts failed.
  bool ready_within(const pipeline::ReadyCheck& check, int port, int tries) {
    for (int t = 0; t < tries; ++t) {
      std::optional<bool> result;
      check_ready_once(io_, *sandbox_, check, port, [&](bool ok) { result = ok; });
      io_.restart();
      while (!result) io_.run_one_for(std::chrono::seconds(5));
      if (*result) return true;
      boost::asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      pause.wait();
    }
    return false;
  }

  boost::asio::io_context io_;
  std::unique_ptr<executors::Executor> executor_;
  std::unique_ptr<executors::Job> job_;
  std::unique_ptr<executors::Sandbox> sandbox_;
};

TEST_F(ReadyCheckTest, TcpAndHttpChecksPassOnceTheServerListens) {
  int port = free_port();
  pipeline::ReadyCheck tcp;
  tcp.tcp = port;
  pipeline::ReadyCheck http;
  http.http = "/";
  pipeline::ReadyCheck missing;
  missing.http = "/no-such-page";
  // Control: nothing listens yet.
  EXPECT_FALSE(ready_within(tcp, port, 1));
  EXPECT_FALSE(ready_within(http, port, 1));

  executors::ExecRequest req;
  req.argv = {"python3", "-m", "http.server", std::to_string(port), "--bind", "127.0.0.1"};
  req.env = {"PATH=/usr/bin:/bin"};
  ASSERT_TRUE(sandbox_->exec(req, {}).ok());
  EXPECT_TRUE(ready_within(tcp, port, 100));
  EXPECT_TRUE(ready_within(http, port, 100));
  EXPECT_FALSE(ready_within(missing, port, 1)) << "a 404 is not ready";
}

TEST_F(ReadyCheckTest, ABusyServerIsNotReadyAndStallsNothing) {
  BusyListener busy;
  pipeline::ReadyCheck check;  // http goes through the same connect as tcp, then GETs
  check.tcp = busy.port;
  check.http = "/";
  std::vector<std::string> events;
  bool ready = true;
  check_ready_once(io_, *sandbox_, check, 0, [&](bool ok) {
    ready = ok;
    events.push_back("check");
  });
  // Other work on the loop (every other step of the job) goes on while the check waits.
  boost::asio::steady_timer meanwhile(io_, std::chrono::milliseconds(1));
  meanwhile.async_wait([&](boost::system::error_code ec) {
    if (!ec) events.push_back("timer");
  });
  io_.run();
  EXPECT_EQ(events, (std::vector<std::string>{"timer", "check"}));
  EXPECT_FALSE(ready);
}

}  // namespace
}  // namespace boxcar::agent
