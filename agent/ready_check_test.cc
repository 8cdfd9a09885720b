// Ready checks against a real server in a real (host) sandbox.
#include "agent/ready_check.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

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

}  // namespace
}  // namespace boxcar::agent
