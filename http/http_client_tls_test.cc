// The HttpClient over TLS against a real HTTPS server on loopback, with certificates
// from a throwaway CA: the CA given (control) is accepted; the system store, a certificate
// for another name and a server that does not speak TLS are refused with a message that says
// what to do, before any request is sent.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "http/http_client.h"
#include "testing/test_ca.h"

namespace boxcar {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

// Answers every request 200 "hello" over TLS, one request per connection; remembers the SNI.
// `cut`: the answer promises 1000 bytes, sends the 5, and the TCP connection is closed without
// TLS's close_notify (what an injected FIN looks like).
class TlsTestServer {
 public:
  TlsTestServer(const fs::path& cert, const fs::path& key, bool cut = false)
      : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}), cut_(cut) {
    ctx_.use_certificate_chain_file(cert.string());
    ctx_.use_private_key_file(key.string(), asio::ssl::context::pem);
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TlsTestServer() {
    io_.stop();
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int requests() const { return requests_; }
  std::string sni() {
    std::lock_guard lock(mu_);
    return sni_;
  }

 private:
  struct Conn {
    Conn(tcp::socket s, asio::ssl::context& ctx) : stream(std::move(s), ctx) {}
    beast::ssl_stream<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
  };

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      auto c = std::make_shared<Conn>(std::move(socket), ctx_);
      c->stream.async_handshake(asio::ssl::stream_base::server, [this, c](beast::error_code e) {
        if (e) return;
        if (const char* name = ::SSL_get_servername(c->stream.native_handle(),
                                                    TLSEXT_NAMETYPE_host_name)) {
          std::lock_guard lock(mu_);
          sni_ = name;
        }
        http::async_read(c->stream, c->buffer, c->req, [this, c](beast::error_code re, size_t) {
          if (re) return;
          ++requests_;
          if (cut_) {
            static const std::string kCut = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nhello";
            asio::async_write(c->stream, asio::buffer(kCut), [c](beast::error_code, size_t) {
              beast::error_code ignored;
              beast::get_lowest_layer(c->stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
              beast::get_lowest_layer(c->stream).socket().close(ignored);
            });
            return;
          }
          c->res = http::response<http::string_body>(http::status::ok, 11);
          c->res.body() = "hello";
          c->res.keep_alive(false);
          c->res.prepare_payload();
          http::async_write(c->stream, c->res, [c](beast::error_code, size_t) {});
        });
      });
      accept();
    });
  }

  asio::io_context io_;
  asio::ssl::context ctx_{asio::ssl::context::tls_server};
  tcp::acceptor acceptor_;
  bool cut_ = false;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::string sni_;
};

struct Outcome {
  boost::system::error_code ec;
  HttpReply response;
};

class HttpClientTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxcar-tls-XXXXXX";
    dir = ::mkdtemp(tmpl);
    ca.emplace(dir);
    ASSERT_TRUE(ca->ok()) << ca->error();
    ASSERT_TRUE(ca->issue("local", "DNS:localhost,IP:127.0.0.1")) << ca->error();
    ASSERT_TRUE(ca->issue("other", "DNS:other.example")) << ca->error();
  }
  void TearDown() override { fs::remove_all(dir); }

  // One POST to `url`/x through a client that trusts `ca_file` (empty: the system's CAs).
  Outcome post(const std::string& url, const fs::path& ca_file) {
    return post_with(url, TlsClientOptions{ca_file});
  }
  Outcome post_with(const std::string& url, const TlsClientOptions& options) {
    auto tls = TlsClient::create(options);
    EXPECT_TRUE(tls.ok()) << tls.error().message;
    asio::io_context io;
    HttpClient client(io, parse_server_url(url).value(), "agent-token", tls.value());
    Outcome out;
    client.post_json("/x", boost::json::object{}, Millis(10'000),
                     [&](const boost::system::error_code& ec, HttpReply r) {
                       out.ec = ec;
                       out.response = std::move(r);
                     });
    io.run();
    return out;
  }

  fs::path dir;
  std::optional<boxcar::testing::TestCa> ca;
};

// A streamed answer (a download) whose connection ends before its Content-Length is an error,
// even over TLS where the cut shows as a missing close_notify: it used to end as a whole body.
TEST_F(HttpClientTlsTest, AStreamCutShortIsAnErrorNotAWholeBody) {
  for (bool cut : {false, true}) {
    TlsTestServer server(ca->cert("local"), ca->key("local"), cut);
    auto tls = TlsClient::create(TlsClientOptions{ca->ca_pem()});
    ASSERT_TRUE(tls.ok()) << tls.error().message;
    asio::io_context io;
    HttpClient client(io, parse_server_url("https://127.0.0.1:" + std::to_string(server.port())).value(),
                      "token", tls.value());
    std::string got;
    Outcome out;
    client.stream("/x", Millis(10'000), [&](std::string_view piece) {
      got.append(piece);
      return true;
    }, [&](const boost::system::error_code& ec, HttpReply r) {
      out.ec = ec;
      out.response = std::move(r);
    });
    io.run();
    EXPECT_EQ(got, "hello") << (cut ? "cut" : "control");
    if (cut) {
      EXPECT_TRUE(out.ec) << "a body cut short must not pass as whole";
    } else {
      EXPECT_FALSE(out.ec) << "control: " << out.ec.message();
      EXPECT_EQ(out.response.status, 200u);
    }
  }
}

TEST_F(HttpClientTlsTest, TheGivenCaIsTrustedForTheNamesItsCertificateCarries) {
  TlsTestServer server(ca->cert("local"), ca->key("local"));
  auto by_ip = post("https://127.0.0.1:" + std::to_string(server.port()), ca->ca_pem());
  ASSERT_FALSE(by_ip.ec) << by_ip.ec.message();
  EXPECT_EQ(by_ip.response.status, 200u);
  EXPECT_EQ(by_ip.response.body, "hello");
  auto by_name = post("https://localhost:" + std::to_string(server.port()), ca->ca_pem());
  ASSERT_FALSE(by_name.ec) << by_name.ec.message();
  EXPECT_EQ(server.sni(), "localhost");  // SNI goes with names
  EXPECT_EQ(server.requests(), 2);
}

TEST_F(HttpClientTlsTest, AnUntrustedCertificateIsRefusedBeforeTheRequestIsSent) {
  TlsTestServer server(ca->cert("local"), ca->key("local"));
  auto out = post("https://127.0.0.1:" + std::to_string(server.port()), fs::path());  // system CAs
  ASSERT_TRUE(out.ec);
  EXPECT_EQ(&out.ec.category(), &tls_verify_category());
  std::string message = out.ec.message();
  EXPECT_NE(message.find("not trusted"), std::string::npos) << message;
  EXPECT_NE(message.find("--ca-file"), std::string::npos) << message;
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(HttpClientTlsTest, ACertificateForAnotherNameIsRefused) {
  TlsTestServer server(ca->cert("other"), ca->key("other"));
  auto out = post("https://127.0.0.1:" + std::to_string(server.port()), ca->ca_pem());
  ASSERT_TRUE(out.ec);
  EXPECT_NE(out.ec.message().find("not for this host"), std::string::npos) << out.ec.message();
  auto by_name = post("https://localhost:" + std::to_string(server.port()), ca->ca_pem());
  ASSERT_TRUE(by_name.ec);
  EXPECT_NE(by_name.ec.message().find("not for this host"), std::string::npos);
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(HttpClientTlsTest, HttpsToAPlainHttpServerSaysItIsNotTls) {
  // A plain HTTP server answers the client's hello as the bad request it is, as most do.
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  uint16_t port = acceptor.local_endpoint().port();
  std::thread plain([&] {
    tcp::socket s = acceptor.accept();
    std::array<char, 512> hello;
    boost::system::error_code ec;
    s.read_some(asio::buffer(hello), ec);
    asio::write(s, asio::buffer(std::string("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")), ec);
  });
  auto out = post("https://127.0.0.1:" + std::to_string(port), ca->ca_pem());
  plain.join();
  ASSERT_TRUE(out.ec);
  EXPECT_NE(out.ec.message().find("did not answer in TLS"), std::string::npos) << out.ec.message();
}

// serve's in-process agents: exactly the served certificate, whatever names it carries (they
// connect to 127.0.0.1), and nothing else its chain file holds.
TEST_F(HttpClientTlsTest, APinnedCertificateIsTrustedAloneWhateverItsNames) {
  fs::path chain = dir / "chain.pem";
  {
    std::ofstream out(chain);
    out << std::ifstream(ca->cert("other")).rdbuf() << std::ifstream(ca->ca_pem()).rdbuf();
  }
  TlsClientOptions pinned{chain, /*pinned=*/true};
  {
    TlsTestServer server(ca->cert("other"), ca->key("other"));  // for other.example only
    auto out = post_with("https://127.0.0.1:" + std::to_string(server.port()), pinned);
    ASSERT_FALSE(out.ec) << out.ec.message();
    EXPECT_EQ(out.response.status, 200u);
  }
  // Another certificate from the same CA (the chain file's second entry) is not trusted.
  TlsTestServer server(ca->cert("local"), ca->key("local"));
  auto out = post_with("https://127.0.0.1:" + std::to_string(server.port()), pinned);
  ASSERT_TRUE(out.ec);
  EXPECT_NE(out.ec.message().find("not trusted"), std::string::npos) << out.ec.message();
  EXPECT_EQ(server.requests(), 0);
}

}  // namespace
}  // namespace boxcar
