// Connection floods against a real `boxcar serve` started with a low RLIMIT_NOFILE: the caps
// refuse at once, running out of descriptors pauses accepting instead of spinning, slowloris
// headers are cut, and through all of it /healthz answers and a job succeeds.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "testing/loopback_client.h"
#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

using testing::connect_from;  // from any 127.0.0.0/8 address: each one a client of its own
using testing::read_until;

// serve runs with 1024 descriptors at most, soft and hard (so it cannot raise them).
const std::vector<std::string> kLowFdLimit = {"/usr/bin/prlimit", "--nofile=1024:1024"};

std::string one_step(const std::string& run) {
  return "version = 1\n[[step]]\nname = \"work\"\nrun = '''\n" + run + "\n'''\n";
}

// Best effort: the server may have closed the connection already (no SIGPIPE then).
void send_all(int s, const std::string& data) {
  (void)!::send(s, data.data(), data.size(), MSG_NOSIGNAL);
}

// read_until, giving up once `deadline` passed (a stream's keep-alive comments do not count).
std::string read_until_within(int s, const std::string& needle, std::chrono::seconds deadline) {
  timeval tick{1, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
  auto end = std::chrono::steady_clock::now() + deadline;
  std::string out;
  char buf[4096];
  while (out.find(needle) == std::string::npos && std::chrono::steady_clock::now() < end) {
    ssize_t n = ::read(s, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
    if (n > 0) out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// GET /healthz on a fresh connection from `source`: the whole answer ("" if not connected).
std::string healthz_from(const std::string& source, int port) {
  int s = connect_from(source, port);
  if (s < 0) return "";
  send_all(s, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  std::string answer = read_until(s, "\r\n\r\nok\n");
  ::close(s);
  return answer;
}

// `count` connections from `source` that each send half a request header and then nothing.
struct Flood {
  Flood(const std::string& source, int port, int count) {
    for (int i = 0; i < count; ++i) {
      int s = connect_from(source, port);
      if (s < 0) continue;
      send_all(s, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ");
      sockets.push_back(s);
    }
  }
  ~Flood() { stop(); }
  void stop() {
    for (int s : sockets) ::close(s);
    sockets.clear();
  }
  std::vector<int> sockets;
};

// utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15).
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));  // after "pid (comm) "
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;
  double utime = 0, stime = 0;
  fields >> utime >> stime;
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// A spin on accept burns a whole CPU second per second; an idle server next to nothing.
void expect_no_spin(pid_t pid) {
  double before = cpu_seconds(pid);
  std::this_thread::sleep_for(2s);
  double burnt = cpu_seconds(pid) - before;
  EXPECT_LT(burnt, 0.5) << "serve burnt " << burnt << " s of CPU in 2 s while flooded";
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(Connections, AFloodMeetsTheDefaultCapsWhileAJobRunsAndOthersAreServed) {
  TempDir work;
  make_git_repo(work / "repo", one_step("sleep 5; echo survived the flood"));
  // Default caps. The flood's half-sent headers may stay a minute; kept-alive connections that
  // idle a second are closed, so the agent needs new connections while the flood is on.
  Server server(work.path(),
                {"--agent-token", "tok", "--header-timeout", "60s", "--idle-timeout", "1s"}, 0,
                "serve", kLowFdLimit);
  ASSERT_TRUE(server.ok());
  long id = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(id, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        auto j = server.job(id);
        return j && str(*j, "state") == "running";
      },
      60s, "the job runs"));
  // A client already connected: it follows the job's log through the flood.
  int follower = connect_from("127.0.0.1", server.port());
  send_all(follower, "GET /api/v1/jobs/" + std::to_string(id) +
                         "/logs?follow=1 HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\nAuthorization: Bearer " +
                         server.token() + "\r\n\r\n");
  ASSERT_NE(read_until(follower, "\r\n\r\n").find("200 OK"), std::string::npos);

  // 1,100 half-sent connections from one address, more than the process has descriptors.
  Flood flood("127.0.0.3", server.port(), 1100);
  ASSERT_EQ(flood.sockets.size(), 1100u);
  // The cap per client (256 by default) answers the rest at once...
  std::string refused = healthz_from("127.0.0.3", server.port());
  EXPECT_NE(refused.find("503"), std::string::npos) << refused;
  EXPECT_NE(refused.find("too many connections from 127.0.0.3"), std::string::npos) << refused;
  // ...while another client address is served.
  EXPECT_NE(healthz_from("127.0.0.2", server.port()).find("200 OK"), std::string::npos);
  // A second address fills the listener (384 with 1024 descriptors): everyone new is refused
  // now, but the follower is served, and the in-process agent, on a listener of its own,
  // finishes the job meanwhile.
  Flood second("127.0.0.4", server.port(), 300);
  std::string full = healthz_from("127.0.0.2", server.port());
  EXPECT_NE(full.find("this listener holds at most 384"), std::string::npos) << full;
  expect_no_spin(server.process().pid());
  // Kept-alive connections idle out meanwhile; like a flood that goes on, take every place they
  // gave back, so nothing on the public listener is left to the agent.
  Flood topped_up("127.0.0.4", server.port(), 20);
  // The job ends within seconds; a starved agent would wait for the flood to end (a minute).
  std::string followed = read_until_within(follower, "event: end", 20s);
  ::close(follower);
  EXPECT_NE(followed.find("survived the flood"), std::string::npos) << followed;
  EXPECT_NE(followed.find("\"state\":\"success\""), std::string::npos) << followed;
  // The caps kept serve well away from its descriptor limit.
  EXPECT_EQ(server.process().err().find("out of file descriptors"), std::string::npos)
      << server.process().describe();
  topped_up.stop();
  second.stop();
  flood.stop();
  EXPECT_TRUE(wait_until(
      [&] { return healthz_from("127.0.0.3", server.port()).find("200 OK") != std::string::npos; },
      30s, "127.0.0.3 is let in again once its connections closed"));
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "success") << server.process().describe();
}

TEST(Connections, OutOfDescriptorsServePausesAcceptingServesWhatIsOpenAndRecovers) {
  TempDir work;
  make_git_repo(work / "repo", one_step("echo after the flood"));
  // Caps above the descriptor limit, so that the flood runs into EMFILE itself.
  Server server(work.path(),
                {"--agent-token", "tok", "--executor", "host", "--max-connections", "4000",
                 "--max-connections-per-client", "4000", "--preview-max-connections", "2000",
                 "--preview-max-connections-per-client", "2000", "--preview-listen", "127.0.0.1:0"},
                0, "serve", kLowFdLimit);
  ASSERT_TRUE(server.ok());
  int kept = connect_from("127.0.0.1", server.port());  // a client connected before the flood
  ASSERT_GE(kept, 0);
  send_all(kept, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  ASSERT_NE(read_until(kept, "\r\n\r\nok\n").find("200 OK"), std::string::npos);

  Flood flood("127.0.0.3", server.port(), 1100);
  ASSERT_TRUE(wait_until(
      [&] {
        return server.process().err().find(
                   "API listener 127.0.0.1:" + std::to_string(server.port()) +
                   ": out of file descriptors") != std::string::npos;
      },
      30s, "serve runs out of descriptors and says so"))
      << server.process().describe();
  // The preview port, in the same process, is out of descriptors too.
  std::string err = server.process().err();
  const std::string announced = "previews of the in-process agents on port ";
  size_t at = err.find(announced);
  ASSERT_NE(at, std::string::npos) << err;
  int preview_port = std::stoi(err.substr(at + announced.size()));
  Flood preview_flood("127.0.0.3", preview_port, 100);
  ASSERT_TRUE(wait_until(
      [&] { return server.process().err().find("preview listener") != std::string::npos; }, 30s,
      "the preview port runs out of descriptors and says so"));

  expect_no_spin(server.process().pid());
  // What was open before the flood is still served.
  send_all(kept, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_NE(read_until(kept, "\r\n\r\nok\n").find("200 OK"), std::string::npos);
  ::close(kept);

  flood.stop();
  preview_flood.stop();
  ASSERT_TRUE(wait_until(
      [&] { return http_request(server.port(), "GET", "/healthz", {}, "", 5s).status == 200; }, 30s,
      "serve accepts again"));
  EXPECT_TRUE(wait_until(
      [&] { return healthz_from("127.0.0.1", preview_port).find("404") != std::string::npos; }, 30s,
      "the preview port accepts again"));
  long id = server.submit({{"repo", (work / "repo").string()}});
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "success") << server.logs(id) << server.process().describe();
  // One line per listener and episode, not one per failed accept.
  err = server.process().err();
  EXPECT_EQ(count_of(err, "API listener 127.0.0.1:" + std::to_string(server.port()) +
                              ": out of file descriptors"),
            1u)
      << err;
  EXPECT_EQ(count_of(err, "preview listener 127.0.0.1:" + std::to_string(preview_port) +
                              ": out of file descriptors"),
            1u)
      << err;
}

TEST(Connections, ASlowlorisHeaderIsCutWhileStreamsQuieterThanTheTimeoutsAreNot) {
  TempDir work;
  make_git_repo(work / "repo", one_step("echo before the pause; sleep 2; echo after the pause"));
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host", "--header-timeout",
                              "1s", "--idle-timeout", "1s"});
  ASSERT_TRUE(server.ok());
  int slow = connect_from("127.0.0.1", server.port());
  ASSERT_GE(slow, 0);
  send_all(slow, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a");
  // Control: a client that sends its header in time is served meanwhile.
  EXPECT_NE(healthz_from("127.0.0.1", server.port()).find("200 OK"), std::string::npos);
  send_all(slow, "b");  // a byte now and then does not buy more time
  char byte;
  ssize_t n = ::read(slow, &byte, 1);  // EOF, or a reset if "b" came after the close
  EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET))
      << "the slow header's connection was not closed: read gave " << n;
  ::close(slow);

  // A log follower waits 2 s for the step's next line, twice both timeouts; the
  // in-process agent's kept-alive connections idle out between its requests and reconnect.
  long id = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(id, 0);
  auto follow = server.api("GET", "/api/v1/jobs/" + std::to_string(id) + "/logs?follow=1");
  EXPECT_EQ(follow.status, 200) << follow.error;
  EXPECT_NE(follow.body.find("after the pause"), std::string::npos) << follow.body;
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "success") << server.logs(id) << server.process().describe();
}

}  // namespace
}  // namespace boxcar::service_test
