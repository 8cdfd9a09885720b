#include "http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

#include "testing/test_client.h"

namespace boxcar::server {
namespace {

using testing::TestClient;
using testing::TestStream;

TEST(RouterTest, MatchesLiteralPathsAndCapturesSegments) {
  Router router;
  router.add(http::verb::get, "/api/v1/jobs", [](HttpRequest&, std::shared_ptr<Responder>) {});
  router.add(http::verb::post, "/api/v1/jobs/{id}/cancel",
             [](HttpRequest&, std::shared_ptr<Responder>) {});
  auto m = router.match(http::verb::post, "/api/v1/jobs/42/cancel");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params.at("id"), "42");
  EXPECT_NE(router.match(http::verb::get, "/api/v1/jobs/").route, nullptr);  // trailing slash
  EXPECT_EQ(router.match(http::verb::get, "/api/v1/jobs/42/cancel/x").status, 404u);
  EXPECT_EQ(router.match(http::verb::get, "/nope").status, 404u);
}

TEST(RouterTest, WrongMethodIs405WithAllow) {
  Router router;
  router.add(http::verb::get, "/a/{id}", [](HttpRequest&, std::shared_ptr<Responder>) {});
  router.add(http::verb::put, "/a/{id}", [](HttpRequest&, std::shared_ptr<Responder>) {});
  auto m = router.match(http::verb::post, "/a/1");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.status, 405u);
  EXPECT_EQ(m.allow, "GET, PUT");
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add(http::verb::get, "/hello/{name}", [](HttpRequest& req, auto res) {
      res->reply(HttpResponse::text(200, "hello " + req.params["name"] + " " +
                                             req.query_or("x", "-")));
    });
    router_.add(http::verb::post, "/echo", [](HttpRequest& req, auto res) {
      res->reply(HttpResponse::text(200, req.body()));
    }, RouteOptions{16, [this] { ++too_large_; }, {}, {}});
    router_.add(http::verb::get, "/later", [](HttpRequest&, std::shared_ptr<Responder> res) {
      auto timer = std::make_shared<boost::asio::steady_timer>(res->executor());
      timer->expires_after(std::chrono::milliseconds(100));
      timer->async_wait([timer, res](auto) { res->reply(HttpResponse::text(200, "late")); });
    });
    router_.add(http::verb::get, "/stream", [](HttpRequest&, std::shared_ptr<Responder> res) {
      res->begin_stream(HttpResponse::text(200, "", "text/event-stream"));
      res->write("one\n", [res](bool ok) {
        if (ok) res->write("two\n", [res](bool) { res->end(); });
      });
    });
    router_.add(http::verb::get, "/throws", [](HttpRequest&, auto) -> void {
      throw std::runtime_error("boom");
    });
    HttpServerOptions options;
    options.on_response = [this](unsigned code) { codes_ += std::to_string(code) + " "; };
    server_ = std::make_unique<HttpServer>(io_, router_, options);
    auto port = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.error().message;
    port_ = *port;
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    server_->stop();
    io_.stop();
    thread_.join();
  }

  boost::asio::io_context io_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::atomic<int> too_large_{0};
  std::string codes_;
};

TEST_F(HttpServerTest, AnswersAndKeepsTheConnectionAlive) {
  TestClient client(port_);
  auto a = client.get("/hello/world?x=%41");
  EXPECT_EQ(a.status, 200u);
  EXPECT_EQ(a.body, "hello world A");
  auto b = client.post("/echo", "ping");
  EXPECT_EQ(b.status, 200u);
  EXPECT_EQ(b.body, "ping");
}

TEST_F(HttpServerTest, UnknownPathAndWrongMethodAreJsonErrors) {
  TestClient client(port_);
  auto missing = client.get("/nope");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_TRUE(missing.json().is_object()) << missing.body;
  auto wrong = client.get("/echo");
  EXPECT_EQ(wrong.status, 405u);
  EXPECT_EQ(wrong.header("allow"), "POST");
  EXPECT_NE(wrong.body.find("\"error\""), std::string::npos);
}

TEST_F(HttpServerTest, BodyOverTheRouteLimitIs413) {
  TestClient client(port_);
  auto r = client.post("/echo", std::string(17, 'x'));
  EXPECT_EQ(r.status, 413u);
  EXPECT_EQ(too_large_.load(), 1);
  EXPECT_EQ(client.post("/echo", std::string(16, 'x')).status, 200u);
}

TEST_F(HttpServerTest, HandlersMayAnswerLater) {
  TestClient client(port_);
  EXPECT_EQ(client.get("/later").body, "late");
  EXPECT_EQ(client.get("/hello/again").status, 200u);
}

TEST_F(HttpServerTest, StreamsChunks) {
  TestStream stream(port_, "/stream");
  EXPECT_EQ(stream.status(), 200u);
  EXPECT_TRUE(stream.read_until("two\n"));
  EXPECT_EQ(stream.text(), "one\ntwo\n");
}

TEST_F(HttpServerTest, HandlerExceptionsBecome500) {
  TestClient client(port_);
  auto r = client.get("/throws");
  EXPECT_EQ(r.status, 500u);
  EXPECT_NE(r.body.find("boom"), std::string::npos);
}


// A server with 300 ms header and idle timeouts, over raw loopback sockets.
class HttpServerTimeoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add(http::verb::get, "/hi", [](HttpRequest&, auto res) {
      res->reply(HttpResponse::text(200, "hi"));
    });
    // A stream that stays quiet for three times the timeouts before its last chunk.
    router_.add(http::verb::get, "/quiet", [](HttpRequest&, std::shared_ptr<Responder> res) {
      res->begin_stream(HttpResponse::text(200, "", "text/plain"));
      res->write("first\n", [res](bool) {
        auto timer = std::make_shared<boost::asio::steady_timer>(res->executor());
        timer->expires_after(std::chrono::milliseconds(900));
        timer->async_wait([timer, res](auto) {
          res->write("last\n", [res](bool) { res->end(); });
        });
      });
    });
    HttpServerOptions options;
    options.header_timeout = std::chrono::milliseconds(300);
    options.idle_timeout = std::chrono::milliseconds(300);
    server_ = std::make_unique<HttpServer>(io_, router_, options);
    auto port = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.error().message;
    port_ = *port;
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    server_->stop();
    io_.stop();
    thread_.join();
  }

  // A raw connection; reads give up after 30 s only so that a broken server fails the test
  // instead of hanging it.
  int connect() {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval guard{30, 0};
    ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
    return s;
  }
  static void send_all(int s, const std::string& data) {
    ASSERT_EQ(::write(s, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  }
  // Reads until `needle` arrived (returns what was read) or the peer closed ("" + what came).
  static std::string read_until(int s, const std::string& needle) {
    std::string out;
    char buf[4096];
    while (out.find(needle) == std::string::npos) {
      ssize_t n = ::read(s, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // True once the server closed `s` (EOF or reset), false if it sent data instead.
  static bool closed_by_server(int s) {
    char byte;
    ssize_t n = ::read(s, &byte, 1);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  boost::asio::io_context io_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

TEST_F(HttpServerTimeoutTest, AHeaderNotCompleteInTimeIsCutWhileAPromptOneIsServed) {
  int slow = connect();
  send_all(slow, "GET /hi HTTP/1.1\r\nHost: x\r\nX-Slow: ");  // and never the rest
  int prompt = connect();
  send_all(prompt, "GET /hi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(read_until(prompt, "\r\n\r\nhi").find("200 OK"), std::string::npos);
  EXPECT_TRUE(closed_by_server(slow)) << "a trickled header held its connection";
  ::close(slow);
  ::close(prompt);
}

TEST_F(HttpServerTimeoutTest, AKeptAliveConnectionIsReusedThenClosedWhenItIdles) {
  int s = connect();
  send_all(s, "GET /hi HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(read_until(s, "\r\n\r\nhi").find("200 OK"), std::string::npos);
  send_all(s, "GET /hi HTTP/1.1\r\nHost: x\r\n\r\n");  // kept alive: served again
  EXPECT_NE(read_until(s, "\r\n\r\nhi").find("200 OK"), std::string::npos);
  EXPECT_TRUE(closed_by_server(s)) << "an idle kept-alive connection stayed open";
  ::close(s);
}

TEST_F(HttpServerTimeoutTest, AStreamQuieterThanBothTimeoutsIsNotCut) {
  int s = connect();
  send_all(s, "GET /quiet HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string got = read_until(s, "last\n");
  EXPECT_NE(got.find("first\n"), std::string::npos) << got;
  EXPECT_NE(got.find("last\n"), std::string::npos) << "the stream was cut: " << got;
  ::close(s);
}

}  // namespace
}  // namespace boxcar::server
