// Sandbox::connect_tcp of a real native sandbox: it reaches the sandbox's own loopback and
// never blocks, not even when the server there is too busy to accept.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include <boost/asio/io_context.hpp>

#include "executors/native/native_executor.h"

namespace boxcar::executors {
namespace {

namespace fs = std::filesystem;

// Listens with room for two connections in its accept queue, accepts none, says "up".
constexpr const char* kBusyServer =
    "import socket, sys, time\n"
    "s = socket.socket()\n"
    "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "s.listen(1)\n"
    "print('up', flush=True)\n"
    "time.sleep(600)\n";

int so_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

TEST(NativeConnectTcp, InProgressBehindAFullAcceptQueueAndRefusedWhereNothingListens) {
  if (Status s = native_available(); !s) GTEST_SKIP() << s.error().message;
  char tmpl[] = "/tmp/boxcar-connect-test-XXXXXX";
  fs::path workspace = ::mkdtemp(tmpl);
  boost::asio::io_context io;
  auto executor = make_native_executor(io);
  auto job = executor->prepare(JobSpec{"connect", workspace});
  ASSERT_TRUE(job.ok()) << job.error().message;
  SandboxSpec spec;
  spec.name = "server";
  auto sb = (*job)->start(spec);
  ASSERT_TRUE(sb.ok()) << sb.error().message;
  Sandbox& sandbox = **sb;

  std::string out;
  bool exited = false;
  ASSERT_TRUE(sandbox
                  .exec(ExecRequest{{"python3", "-c", kBusyServer, "18080"}, {"PATH=/usr/bin:/bin"}},
                        ExecHandlers{[&](OutputStream, std::string_view d) { out.append(d); },
                                     [&](const Outcome&) { exited = true; }})
                  .ok());
  while (out.find("up") == std::string::npos && !exited) io.run_one();
  ASSERT_FALSE(exited) << out;

  // Room for two: each connects at once.
  Result<unique_fd> queued[2] = {sandbox.connect_tcp(18080), sandbox.connect_tcp(18080)};
  for (auto& q : queued) {
    ASSERT_TRUE(q.ok()) << q.error().message;
    pollfd p{q->get(), POLLOUT, 0};
    ASSERT_EQ(::poll(&p, 1, 10'000), 1);
    EXPECT_EQ(so_error(q->get()), 0);
  }
  // The kernel drops this SYN: connect_tcp still returns, with the connection in progress.
  auto pending = sandbox.connect_tcp(18080);
  ASSERT_TRUE(pending.ok()) << pending.error().message;
  EXPECT_NE(::fcntl(pending->get(), F_GETFL) & O_NONBLOCK, 0);
  pollfd p{pending->get(), POLLOUT, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "not writable while the SYN is unanswered";

  // Refused either at once or, as the kernel answers the SYN after connect() returned, through
  // SO_ERROR.
  auto refused = sandbox.connect_tcp(18081);
  int err = refused.ok() ? 0 : refused.error().err;
  if (refused.ok()) {
    pollfd r{refused->get(), POLLOUT, 0};
    ASSERT_EQ(::poll(&r, 1, 10'000), 1);
    err = so_error(refused->get());
  }
  EXPECT_EQ(err, ECONNREFUSED);

  sandbox.destroy();
  (*job)->destroy();
  io.restart();
  io.run_for(std::chrono::milliseconds(50));  // reaps and cgroup removal
  fs::remove_all(workspace);
}

}  // namespace
}  // namespace boxcar::executors
