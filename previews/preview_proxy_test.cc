// The preview proxy against a real loopback upstream, through a fake sandbox.
#include "previews/preview_proxy.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <future>
#include <thread>

#include "testing/loopback_sandbox.h"
#include "testing/loopback_client.h"

namespace boxcar::agent {
namespace {

int connect_loopback(uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

// "Inside the sandbox" is the host loopback here, reached the way a sandbox reaches its own.
using boxcar::testing::LoopbackSandbox;

// Answers every connection with its request head as the body, then closes. With `serving`
// false it accepts nothing until serve(): with `backlog` 1 and two connections queued, a server
// too busy to accept.
class EchoHeadServer {
 public:
  explicit EchoHeadServer(int backlog = 16, bool serving = true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, backlog);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    if (serving) serve();
  }
  void serve() {
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::string head;
        char buf[4096];
        while (head.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = ::read(c, buf, sizeof buf);
          if (n <= 0) break;
          head.append(buf, static_cast<size_t>(n));
        }
        std::string resp = "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(head.size()) +
                           "\r\n\r\n" + head;
        (void)!::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~EchoHeadServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

std::string fetch(uint16_t port, const std::string& request) {
  int s = connect_loopback(port);
  if (s < 0) return "";
  timeval guard{30, 0};  // only so that a broken proxy fails the test instead of hanging it
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
  (void)!::write(s, request.data(), request.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(s, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(s);
  return out;
}

class PreviewProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(proxy_.listen("127.0.0.1:0").ok());
    urls_ = proxy_.publish(sandbox_, "20260101-ABC_def", upstream_.port());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  template <typename F>
  void on_io(F f) {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
  std::string token() const {
    std::string p = urls_.path_url;
    p.pop_back();
    return p.substr(p.rfind('/') + 1);
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  EchoHeadServer upstream_;
  LoopbackSandbox sandbox_;
  PreviewProxy proxy_{io_, "localhost"};
  PreviewUrls urls_;
  std::thread thread_;
};

TEST(PreviewTokenTest, SixteenBase32CharactersAndFresh) {
  std::string a = make_preview_token(), b = make_preview_token();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_NE(a, b);
  for (char c : a) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')) << a;
}

TEST(PreviewTokenTest, PublishAsKeepsATokenOfTheFreshFormOnly) {
  boost::asio::io_context io;
  PreviewProxy proxy(io, "localhost");
  LoopbackSandbox sandbox;
  std::string kept = make_preview_token();
  PreviewUrls same = proxy.publish_as(sandbox, "job", 8000, kept);
  EXPECT_EQ(same.token, kept);
  EXPECT_NE(same.path_url.find("/preview/" + kept + "/"), std::string::npos) << same.path_url;
  // Attack: a guessable or malformed token (a ports.json edited by hand) is never published.
  for (std::string bad : {"aaaaaaaaaaaaaaaa0", "short", "AAAAAAAAAAAAAAAA", "aaaaaaaaaaaaaaa/", ""}) {
    EXPECT_NE(proxy.publish_as(sandbox, "job", 8001, bad).token, bad) << bad;
  }
  proxy.withdraw(sandbox);
}

TEST(PreviewTokenTest, JobLabelKeepsOnlyLowercaseAlnum) {
  EXPECT_EQ(preview_job_label("20260101-ABC_def"), "20260101abcdef");
  EXPECT_EQ(preview_job_label("---"), "run");
}

TEST_F(PreviewProxyTest, HostFormForwardsWithForwardedHeaders) {
  std::string host = urls_.host_url.substr(7, urls_.host_url.size() - 8);
  std::string resp = fetch(proxy_.port(), "GET /a?b=1 HTTP/1.1\r\nHost: " + host +
                                              "\r\nConnection: close\r\n\r\n");
  EXPECT_NE(resp.find("200 OK"), std::string::npos) << resp;
  EXPECT_NE(resp.find("GET /a?b=1 HTTP/1.1"), std::string::npos) << resp;
  EXPECT_NE(resp.find("X-Forwarded-For: 127.0.0.1"), std::string::npos) << resp;
  EXPECT_NE(resp.find("X-Forwarded-Host: " + host), std::string::npos) << resp;
  EXPECT_NE(resp.find("X-Forwarded-Proto: http"), std::string::npos) << resp;
}

TEST_F(PreviewProxyTest, PathFormStripsThePrefix) {
  std::string resp = fetch(proxy_.port(), "GET /preview/" + token() +
                                              "/x/y.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_NE(resp.find("GET /x/y.html HTTP/1.1"), std::string::npos) << resp;
  std::string moved = fetch(proxy_.port(), "GET /preview/" + token() + " HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_NE(moved.find("308"), std::string::npos) << moved;
}

TEST_F(PreviewProxyTest, WrongTokenJobOrPortIsNotFound) {
  std::string t = token();
  std::string wrong = t;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  std::string p = std::to_string(upstream_.port());
  for (const std::string& req :
       {"GET /preview/" + wrong + "/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /preview/" + t.substr(0, 8) + "/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: " + p + "-20260101abcdef-" + wrong + ".localhost\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: " + p + "-otherjob-" + t + ".localhost\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: 1-20260101abcdef-" + t + ".localhost\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: " + p + "-20260101abcdef-" + t + ".example.com\r\n\r\n",
        std::string("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")}) {
    EXPECT_NE(fetch(proxy_.port(), req).find("404 Not Found"), std::string::npos) << req;
  }
}

TEST_F(PreviewProxyTest, BusyUpstreamDoesNotStallOtherPreviews) {
  EchoHeadServer busy(1, false);
  int queued[2] = {connect_loopback(busy.port()), connect_loopback(busy.port())};
  ASSERT_GE(queued[0], 0);
  ASSERT_GE(queued[1], 0);
  LoopbackSandbox busy_sandbox;
  PreviewUrls busy_urls;
  on_io([&] { busy_urls = proxy_.publish(busy_sandbox, "busy", busy.port()); });
  auto stalled = std::async(std::launch::async, [&] {
    return fetch(proxy_.port(), "GET / HTTP/1.1\r\nHost: " +
                                    busy_urls.host_url.substr(7, busy_urls.host_url.size() - 8) +
                                    "\r\nConnection: close\r\n\r\n");
  });
  // The kernel drops the proxy's SYN to the busy server: its connect stays in progress.
  while (busy_sandbox.connects == 0) std::this_thread::yield();
  std::string other = fetch(proxy_.port(), "GET /preview/" + token() + "/ HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(other.find("200 OK"), std::string::npos) << other;
  EXPECT_NE(stalled.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  // Room in the queue lets the kernel's next SYN retry through.
  ::close(queued[0]);
  ::close(queued[1]);
  busy.serve();
  std::string late = stalled.get();
  EXPECT_NE(late.find("200 OK"), std::string::npos) << late;
  on_io([&] { proxy_.withdraw(busy_sandbox); });
}

TEST_F(PreviewProxyTest, WithdrawnAndExpiredPreviewsAreNotFound) {
  std::string req = "GET /preview/" + token() + "/ HTTP/1.1\r\nHost: x\r\n\r\n";
  on_io([&] { proxy_.expire_at(sandbox_, std::chrono::steady_clock::now()); });
  EXPECT_NE(fetch(proxy_.port(), req).find("404"), std::string::npos);
  on_io([&] { proxy_.expire_at(sandbox_, std::chrono::steady_clock::time_point::max()); });
  EXPECT_NE(fetch(proxy_.port(), req).find("200 OK"), std::string::npos);
  on_io([&] { proxy_.withdraw(sandbox_); });
  EXPECT_NE(fetch(proxy_.port(), req).find("404"), std::string::npos);
}

// The sandbox API's unexpose: one port of a sandbox withdrawn, its other port still served
// (the control), in both URL forms.
TEST_F(PreviewProxyTest, WithdrawingOnePortLeavesTheSandboxsOtherPortServed) {
  EchoHeadServer other;
  PreviewUrls second;
  on_io([&] { second = proxy_.publish(sandbox_, "20260101-ABC_def", other.port()); });
  EXPECT_EQ(second.path_url, "http://127.0.0.1:" + std::to_string(proxy_.port()) + "/preview/" + second.token + "/");
  EXPECT_EQ(urls_.token, token());
  auto host_req = [](const PreviewUrls& u) {
    return "GET / HTTP/1.1\r\nHost: " + u.host_url.substr(7, u.host_url.size() - 8) + "\r\nConnection: close\r\n\r\n";
  };
  auto path_req = [](const PreviewUrls& u) {
    return "GET /preview/" + u.token + "/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  };
  ASSERT_NE(fetch(proxy_.port(), path_req(second)).find("200 OK"), std::string::npos);
  on_io([&] { proxy_.withdraw(sandbox_, other.port()); });
  EXPECT_NE(fetch(proxy_.port(), path_req(second)).find("404"), std::string::npos);
  EXPECT_NE(fetch(proxy_.port(), host_req(second)).find("404"), std::string::npos);
  EXPECT_NE(fetch(proxy_.port(), path_req(urls_)).find("200 OK"), std::string::npos);
  EXPECT_NE(fetch(proxy_.port(), host_req(urls_)).find("200 OK"), std::string::npos);
}

TEST_F(PreviewProxyTest, AnUnfinishedRequestHeaderIsCutOff) {
  on_io([&] { proxy_.set_header_timeout(std::chrono::milliseconds(50)); });
  int s = connect_loopback(proxy_.port());
  ASSERT_GE(s, 0);
  std::string partial = "GET /preview/" + token() + "/ HTTP/1.1\r\nHost: x\r\n";  // no blank line
  ASSERT_EQ(::write(s, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
  timeval guard{30, 0};  // only so that a broken proxy fails the test instead of hanging it
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
  char buf[64];
  ssize_t n = ::read(s, buf, sizeof buf);
  int err = errno;
  ::close(s);
  EXPECT_EQ(n, 0) << "expected the proxy to close the connection, read gave " << n << " errno " << err;
}


// Over a cap a client is answered 503 at once, and the connections of another address still
// get through; a connection that ends gives its place back.
class PreviewProxyCapsTest : public PreviewProxyTest {
 protected:
  void SetUp() override {
    proxy_.set_connection_limits({3, 2});
    PreviewProxyTest::SetUp();
  }
};

using testing::connect_from;  // from any 127.0.0.0/8 address: each one a client of its own

// Sends `request` on `s`, returns all of the answer, and closes `s`.
std::string exchange(int s, const std::string& request) {
  (void)!::send(s, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out = testing::read_to_end(s);
  ::close(s);
  return out;
}

TEST_F(PreviewProxyCapsTest, OverTheClientCapA503AtOnceWhileAnotherAddressIsServed) {
  std::string req = "GET /preview/" + token() + "/ HTTP/1.1\r\nHost: x\r\n\r\n";
  int idle[2] = {connect_from("127.0.0.1", proxy_.port()),
                 connect_from("127.0.0.1", proxy_.port())};
  ASSERT_GE(idle[0], 0);
  ASSERT_GE(idle[1], 0);
  // Accepted in order: the third from 127.0.0.1 finds its two places taken.
  std::string refused = exchange(connect_from("127.0.0.1", proxy_.port()), req);
  EXPECT_NE(refused.find("503 Service Unavailable"), std::string::npos) << refused;
  EXPECT_NE(refused.find("too many connections from 127.0.0.1"), std::string::npos) << refused;
  std::string other = exchange(connect_from("127.0.0.2", proxy_.port()), req);
  EXPECT_NE(other.find("200 OK"), std::string::npos) << other;
  ::close(idle[0]);
  bool served = false;
  for (int i = 0; i < 3000 && !served; ++i) {  // the proxy notices the close asynchronously
    std::string again = exchange(connect_from("127.0.0.1", proxy_.port()), req);
    served = again.find("200 OK") != std::string::npos;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(served) << "a closed connection kept its place";
  ::close(idle[1]);
}

TEST_F(PreviewProxyTest, AHeaderSentInTimeIsServedBesideOneThatIsNot) {
  on_io([&] { proxy_.set_header_timeout(std::chrono::milliseconds(300)); });
  int slow = connect_loopback(proxy_.port());
  std::string partial = "GET /preview/" + token() + "/ HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(::write(slow, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
  std::string prompt = fetch(proxy_.port(), partial + "\r\n");
  EXPECT_NE(prompt.find("200 OK"), std::string::npos) << prompt;
  timeval guard{30, 0};
  ::setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
  char byte;
  EXPECT_EQ(::read(slow, &byte, 1), 0) << "the unfinished header kept its connection";
  ::close(slow);
}

// An upstream that answers one connection with a header, then `bytes` single bytes `gap`
// apart, then holds the connection open and quiet until destroyed.
class TricklingServer {
 public:
  TricklingServer(int bytes, std::chrono::milliseconds gap) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 4);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, bytes, gap] {
      conn_ = ::accept(fd_, nullptr, nullptr);
      if (conn_ < 0) return;
      char buf[4096];
      (void)!::read(conn_, buf, sizeof buf);
      std::string head = "HTTP/1.0 200 OK\r\n\r\n";
      (void)!::send(conn_, head.data(), head.size(), MSG_NOSIGNAL);
      for (int i = 0; i < bytes && !stop_; ++i) {
        std::this_thread::sleep_for(gap);
        char c = static_cast<char>('1' + i);
        (void)!::send(conn_, &c, 1, MSG_NOSIGNAL);
      }
      if (bytes > 0) ::shutdown(conn_, SHUT_WR);  // done: the proxy passes the end on
    });
  }
  ~TricklingServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    if (conn_ >= 0) ::close(conn_);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1, conn_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_ = false;
  std::thread thread_;
};

TEST_F(PreviewProxyTest, AQuietProxiedConnectionIsClosedButATricklingOneIsNot) {
  on_io([&] { proxy_.set_idle_timeout(std::chrono::milliseconds(300)); });
  TricklingServer quiet(0, std::chrono::milliseconds(0));
  TricklingServer trickling(5, std::chrono::milliseconds(150));  // 750 ms, 150 ms apart
  LoopbackSandbox quiet_box, trickling_box;
  PreviewUrls q, t;
  on_io([&] {
    q = proxy_.publish(quiet_box, "quiet", quiet.port());
    t = proxy_.publish(trickling_box, "trickling", trickling.port());
  });
  auto path = [](const PreviewUrls& u) { return u.path_url.substr(u.path_url.find("/preview/")); };
  int s = connect_loopback(proxy_.port());
  timeval guard{30, 0};  // only so that a broken proxy fails the test instead of hanging it
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
  std::string req = "GET " + path(q) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  (void)!::write(s, req.data(), req.size());
  std::string cut;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(s, buf, sizeof buf)) > 0) cut.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(n, 0) << "the quiet connection was not closed (read: " << std::strerror(errno) << ")";
  EXPECT_NE(cut.find("200 OK"), std::string::npos) << cut;  // the head, silence, then the close
  ::close(s);
  std::string whole = fetch(proxy_.port(), "GET " + path(t) + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(whole.find("\r\n\r\n12345"), std::string::npos) << "cut while data flowed: " << whole;
  on_io([&] {
    proxy_.withdraw(quiet_box);
    proxy_.withdraw(trickling_box);
  });
}

}  // namespace
}  // namespace boxcar::agent
