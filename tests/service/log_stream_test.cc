// Logs as data, against a real `boxcar serve`: a step printing binary keeps every byte through
// the agent, the server and `boxcar logs`, next to a step printing text; and live followers of
// a job's log are capped per job and per client (429), while admitted ones stream.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <sstream>
#include <string>

#include "base/base64.h"
#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

// `boxcar logs` piped: "[step] line\n" for every line of the step's output.
std::string labelled(const std::string& step, const std::string& output) {
  std::string out;
  size_t start = 0;
  while (start < output.size()) {
    size_t nl = output.find('\n', start);
    out += "[" + step + "] " + output.substr(start, nl - start) + "\n";
    start = nl + 1;
  }
  return out;
}

TEST(BinaryStepOutput, EveryByteSurvivesAgentServerAndTheCli) {
  TempDir work;
  // 4 KiB of random bytes (seeded), a line with 0xff inside, and text after them.
  std::mt19937 rng(20240601);
  std::string random(4096, '\0');
  for (char& c : random) c = static_cast<char>(rng() & 0xff);
  std::string output = random + "\n" + "before \xff\xfe after\n" + "bin-done\n";
  std::string text_output;
  for (int i = 1; i <= 50; ++i) text_output += "text line " + std::to_string(i) + " caf\xc3\xa9\n";
  make_git_repo(work / "repo",
                "version = 1\n"
                "[[step]]\nname = \"bin\"\nrun = \"cat blob.bin; echo; printf 'before \\\\377\\\\376 "
                "after\\\\n'; echo bin-done\"\n"
                "[[step]]\nname = \"text\"\nrun = 'for i in $(seq 1 50); do echo \"text line $i "
                "café\"; done'\n",
                {{"blob.bin", random}});
  // The default (native sandbox) executor in the in-process agent.
  Server server(work.path(), {"--agent-token", "tok"});
  ASSERT_TRUE(server.ok());
  long id = server.submit({{"repo", (work / "repo").string()}});
  auto job = server.wait_final(id, 90s);
  ASSERT_TRUE(job);
  // Before: the server refused the batch (400) and both steps' lines were lost; the job still
  // ended success. Now every byte is there.
  EXPECT_EQ(str(*job, "state"), "success") << json::serialize(*job) << server.logs(id);
  EXPECT_EQ(server.logs(id, "bin"), output);
  EXPECT_EQ(server.logs(id, "text"), text_output);

  // The CLI (piped) prints the same bytes, labelled.
  auto bin = server.cli({"logs", "--server", server.url(), std::to_string(id), "bin"}, work.path());
  EXPECT_EQ(bin.exit_code, 0) << bin.err;
  EXPECT_TRUE(bin.out == labelled("bin", output)) << "boxcar logs changed the step's bytes";
  auto text = server.cli({"logs", "--server", server.url(), std::to_string(id), "text"}, work.path());
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out, labelled("text", text_output));
  auto follow = server.cli({"logs", "-f", "--server", server.url(), std::to_string(id), "bin"},
                           work.path());
  EXPECT_EQ(follow.exit_code, 0) << follow.err;
  EXPECT_TRUE(follow.out == labelled("bin", output)) << "boxcar logs -f changed the step's bytes";

  // As JSON, "data" is always valid UTF-8 (U+FFFD for the bytes that are not) and
  // "data_base64" carries the bytes when they are not UTF-8.
  auto r = server.api("GET", "/api/v1/jobs/" + std::to_string(id) + "/logs?format=json&step=bin");
  ASSERT_EQ(r.status, 200) << r.body;
  json::parse_options strict;  // the default refuses invalid UTF-8
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec, {}, strict);
  ASSERT_FALSE(ec) << "the answer is not valid UTF-8 JSON: " << ec.message();
  std::string joined;
  bool any_base64 = false;
  for (const auto& c : v.at("chunks").as_array()) {
    const auto& o = c.as_object();
    if (o.contains("data_base64")) {
      any_base64 = true;
      joined += *base64_decode(o.at("data_base64").as_string());
    } else {
      joined += std::string(o.at("data").as_string());
    }
  }
  EXPECT_TRUE(any_base64);
  EXPECT_TRUE(joined == output) << "the JSON chunks do not add up to the step's bytes";
}

// A raw connection that asks to follow a job's log and stays open.
class Follower {
 public:
  Follower(int port, const std::string& token, long job) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    std::string req = "GET /api/v1/jobs/" + std::to_string(job) +
                      "/logs?follow=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                      token + "\r\n\r\n";
    if (::write(fd_, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return;
    read_until("\r\n\r\n", 30s);
    if (received_.rfind("HTTP/1.1 ", 0) == 0) status_ = std::atoi(received_.c_str() + 9);
  }
  ~Follower() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int status() const { return status_; }
  const std::string& received() const { return received_; }
  // Reads until `text` was received or `deadline` passes.
  bool read_until(const std::string& text, std::chrono::milliseconds deadline) {
    auto end = std::chrono::steady_clock::now() + deadline;
    while (received_.find(text) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0 || fd_ < 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) return false;
      received_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

 private:
  int fd_ = -1;
  int status_ = 0;
  std::string received_;
};

TEST(LogFollowers, CappedPerJobAndPerClientWhileAdmittedOnesStream) {
  TempDir work;
  fs::path stop = work / "stop";
  make_git_repo(work / "repo",
                "version = 1\n[[step]]\nname = \"tick\"\nrun = '''\nfor i in $(seq 1 1200); do echo "
                "tick-$i; [ -e " + stop.string() + " ] && break; sleep 0.05; done\n'''\n");
  Server server(work.path(), {"--executor", "host", "--agent-token", "tok",
                              "--max-followers-per-job", "3", "--max-followers-per-client", "5"});
  ASSERT_TRUE(server.ok());
  long ticking = server.submit({{"repo", (work / "repo").string()}});
  long waiting = server.submit({{"repo", (work / "repo").string()}});  // queued behind it

  std::vector<std::unique_ptr<Follower>> of_ticking, of_waiting;
  for (int i = 0; i < 3; ++i) {
    of_ticking.push_back(std::make_unique<Follower>(server.port(), server.token(), ticking));
    ASSERT_EQ(of_ticking.back()->status(), 200) << of_ticking.back()->received();
  }
  // Attack 1: a fourth follower of the same job.
  Follower fourth(server.port(), server.token(), ticking);
  EXPECT_EQ(fourth.status(), 429) << fourth.received();
  fourth.read_until("}", 10s);
  EXPECT_NE(fourth.received().find("--max-followers-per-job"), std::string::npos) << fourth.received();
  // Attack 2: the same client (127.0.0.1) past 5 followers, over two jobs.
  for (int i = 0; i < 2; ++i) {
    of_waiting.push_back(std::make_unique<Follower>(server.port(), server.token(), waiting));
    ASSERT_EQ(of_waiting.back()->status(), 200) << of_waiting.back()->received();
  }
  Follower sixth(server.port(), server.token(), waiting);
  EXPECT_EQ(sixth.status(), 429) << sixth.received();
  sixth.read_until("}", 10s);
  EXPECT_NE(sixth.received().find("--max-followers-per-client"), std::string::npos) << sixth.received();
  // Control: the admitted followers stream the job's lines, and reading without follow works.
  EXPECT_TRUE(of_ticking[0]->read_until("event: log", 60s)) << of_ticking[0]->received();
  EXPECT_TRUE(of_ticking[2]->read_until("tick-", 60s)) << of_ticking[2]->received();
  EXPECT_NE(server.logs(ticking).find("tick-1\n"), std::string::npos);

  // A follower that leaves gives its place back.
  of_ticking[1]->close();
  std::unique_ptr<Follower> replacement;
  ASSERT_TRUE(wait_until(
      [&] {
        replacement = std::make_unique<Follower>(server.port(), server.token(), ticking);
        return replacement->status() == 200;
      },
      30s, "a new follower is admitted once one left"));
  EXPECT_TRUE(replacement->read_until("tick-", 60s)) << replacement->received();

  auto metrics = server.api("GET", "/metrics");
  EXPECT_NE(metrics.body.find("boxcar_log_followers_refused_total{cap=\"job\"}"), std::string::npos)
      << metrics.body;
  write_file(stop, "");
  EXPECT_TRUE(of_ticking[0]->read_until("event: end", 60s)) << of_ticking[0]->received();
}

}  // namespace
}  // namespace boxcar::service_test
