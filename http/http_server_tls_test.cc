// HttpServer over TLS on real loopback connections, with certificates from a throwaway CA:
// answers, keep-alive after a held request, streams, the close watch (a client that leaves is
// noticed, with or without close_notify), plain HTTP answered with a 400 that says https, a
// stalled handshake dropped, and the certificate loader's errors.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <fstream>
#include <optional>
#include <thread>

#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "base/tls_client.h"
#include "http/http_server.h"
#include "testing/test_client.h"
#include "http/tls_server_context.h"
#include "testing/test_ca.h"

namespace boxcar::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace fs = std::filesystem;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

// Polls `pred` every 10 ms for up to 10 s.
bool eventually(const std::function<bool()>& pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

// A TLS client on one connection; every operation bounded by a deadline.
class TlsConnection {
 public:
  TlsConnection(uint16_t port, const fs::path& ca)
      : tls_(TlsClient::create({ca}).value()), stream_(io_, tls_->context()) {
    auto& tcp_layer = beast::get_lowest_layer(stream_);
    tcp_layer.expires_after(10s);
    tcp_layer.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                            [this](beast::error_code ec) { ec_ = ec; });
    run();
    if (!ec_) ec_ = tls_->prepare(stream_.native_handle(), "127.0.0.1");
    if (ec_) return;
    stream_.async_handshake(net::ssl::stream_base::client, [this](beast::error_code ec) { ec_ = ec; });
    run();
  }
  const beast::error_code& error() const { return ec_; }

  // One request; status 0 when it failed (error() says why).
  testing::TestResponse get(const std::string& target) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    testing::TestResponse out;
    http::response<http::string_body> res;
    beast::get_lowest_layer(stream_).expires_after(10s);
    http::async_write(stream_, req, [&](beast::error_code ec, size_t) {
      ec_ = ec;
      if (ec) return;
      http::async_read(stream_, buffer_, res, [&](beast::error_code rec, size_t) { ec_ = rec; });
    });
    run();
    if (ec_) return out;
    out.status = res.result_int();
    out.body = res.body();
    return out;
  }
  // Starts a request and does not wait for its answer.
  void send_only(const std::string& target) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    beast::get_lowest_layer(stream_).expires_after(10s);
    http::async_write(stream_, req, [&](beast::error_code ec, size_t) { ec_ = ec; });
    run();
  }
  // Reads until the server closes the connection (true) or 10 s pass (false).
  bool closed_by_server() {
    bool closed = false;
    std::array<char, 1024> scratch;
    std::function<void()> next = [&] {
      stream_.async_read_some(net::buffer(scratch), [&](beast::error_code ec, size_t) {
        if (ec == beast::error::timeout) return;
        if (ec) {
          closed = true;
          return;
        }
        next();
      });
    };
    beast::get_lowest_layer(stream_).expires_after(10s);
    next();
    run();
    return closed;
  }
  void close_notify() {
    beast::get_lowest_layer(stream_).expires_after(2s);
    stream_.async_shutdown([](beast::error_code) {});
    run();
    beast::get_lowest_layer(stream_).close();
  }
  void drop() { beast::get_lowest_layer(stream_).close(); }

 private:
  void run() {
    io_.restart();
    io_.run();
  }

  net::io_context io_;
  std::shared_ptr<TlsClient> tls_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  beast::error_code ec_;
};

class HttpServerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxcar-tls-server-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ca_.emplace(dir_);
    ASSERT_TRUE(ca_->ok()) << ca_->error();
    ASSERT_TRUE(ca_->issue("local", "DNS:localhost,IP:127.0.0.1")) << ca_->error();
    router_.add(http::verb::get, "/hello", [](HttpRequest&, std::shared_ptr<Responder> res) {
      res->reply(HttpResponse::text(200, "hello"));
    });
    router_.add(http::verb::get, "/later", [](HttpRequest&, std::shared_ptr<Responder> res) {
      auto timer = std::make_shared<net::steady_timer>(res->executor());
      timer->expires_after(100ms);
      timer->async_wait([timer, res](auto) { res->reply(HttpResponse::text(200, "late")); });
    });
    router_.add(http::verb::get, "/stream", [](HttpRequest&, std::shared_ptr<Responder> res) {
      res->begin_stream(HttpResponse::text(200, "", "text/event-stream"));
      res->write("one\n", [res](bool ok) {
        if (ok) res->write("two\n", [res](bool) { res->end(); });
      });
    });
    router_.add(http::verb::get, "/hold", [this](HttpRequest&, std::shared_ptr<Responder> res) {
      ++held_;
      res->on_close([this, res] { ++released_; });
    });
  }
  void TearDown() override {
    if (server_) server_->stop();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    fs::remove_all(dir_);
  }

  void start(std::chrono::seconds idle = 75s, std::chrono::seconds handshake = 10s) {
    auto context = load_tls_server_context(ca_->cert("local"), ca_->key("local"));
    ASSERT_TRUE(context.ok()) << context.error().message;
    HttpServerOptions options;
    options.tls = context.value();
    options.idle_timeout = idle;
    options.handshake_timeout = handshake;
    server_ = std::make_unique<HttpServer>(io_, router_, options);
    auto port = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.error().message;
    port_ = *port;
    thread_ = std::thread([this] { io_.run(); });
  }

  fs::path dir_;
  std::optional<boxcar::testing::TestCa> ca_;
  net::io_context io_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::atomic<int> held_{0}, released_{0};
};

TEST_F(HttpServerTlsTest, AnswersAndKeepsTheConnectionAliveAfterAHeldRequest) {
  start();
  TlsConnection c(port_, ca_->ca_pem());
  ASSERT_FALSE(c.error()) << c.error().message();
  EXPECT_EQ(c.get("/hello").body, "hello");
  // /later is held: the close watch reads meanwhile, and the next request still parses.
  EXPECT_EQ(c.get("/later").body, "late");
  auto again = c.get("/hello");
  EXPECT_EQ(again.status, 200u) << c.error().message();
  EXPECT_EQ(again.body, "hello");
}

TEST_F(HttpServerTlsTest, StreamsChunks) {
  start();
  TlsConnection c(port_, ca_->ca_pem());
  ASSERT_FALSE(c.error()) << c.error().message();
  auto r = c.get("/stream");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "one\ntwo\n");
}

TEST_F(HttpServerTlsTest, AClientThatLeavesAHeldRequestIsNoticed) {
  start();
  TlsConnection abrupt(port_, ca_->ca_pem());
  abrupt.send_only("/hold");
  ASSERT_TRUE(eventually([&] { return held_ == 1; }));
  EXPECT_EQ(released_, 0);  // control: held while the client is there
  abrupt.drop();
  EXPECT_TRUE(eventually([&] { return released_ == 1; }));

  TlsConnection polite(port_, ca_->ca_pem());
  polite.send_only("/hold");
  ASSERT_TRUE(eventually([&] { return held_ == 2; }));
  polite.close_notify();  // close_notify first, then FIN
  EXPECT_TRUE(eventually([&] { return released_ == 2; }));
}

TEST_F(HttpServerTlsTest, AnIdleConnectionAfterAHeldRequestTimesOut) {
  start(/*idle=*/1s);
  TlsConnection c(port_, ca_->ca_pem());
  EXPECT_EQ(c.get("/later").body, "late");
  EXPECT_TRUE(c.closed_by_server());
}

TEST_F(HttpServerTlsTest, PlainHttpGetsA400ThatSaysHttps) {
  start();
  auto r = testing::TestClient::once(port_, http::verb::get, "/hello");
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_NE(r.body.find("HTTPS only"), std::string::npos) << r.body;
}

TEST_F(HttpServerTlsTest, AStalledHandshakeIsDropped) {
  start(75s, /*handshake=*/1s);
  net::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));
  const char hello_start[] = {0x16, 0x03, 0x01};  // a TLS record header, then nothing
  net::write(s, net::buffer(hello_start));
  char byte;
  beast::error_code ec;
  s.read_some(net::buffer(&byte, 1), ec);  // returns when the server gives up on us
  EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset) << ec.message();
}

TEST_F(HttpServerTlsTest, TheCertificateLoaderNamesTheFileAndTheFault) {
  auto missing = load_tls_server_context(dir_ / "nope.pem", ca_->key("local"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("the certificate file " + (dir_ / "nope.pem").string()),
            std::string::npos)
      << missing.error().message;
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  EXPECT_EQ(missing.error().subject, "tls_cert") << "the CLI names --tls-cert from it";
  std::ofstream(dir_ / "junk.pem") << "not a certificate\n";
  auto junk = load_tls_server_context(dir_ / "junk.pem", ca_->key("local"));
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.error().message.find("holds no PEM certificate"), std::string::npos)
      << junk.error().message;
  ASSERT_TRUE(ca_->issue("second", "DNS:localhost")) << ca_->error();
  auto mismatch = load_tls_server_context(ca_->cert("local"), ca_->key("second"));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.error().message.find("is not the key of the certificate"), std::string::npos)
      << mismatch.error().message;
  EXPECT_EQ(mismatch.error().subject, "tls_key");
  EXPECT_TRUE(load_tls_server_context(ca_->cert("local"), ca_->key("local")).ok());  // control
}

}  // namespace
}  // namespace boxcar::server
