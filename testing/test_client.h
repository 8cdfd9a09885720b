// Test support: a tiny synchronous HTTP/1.1 client over loopback (Beast, a deadline on every
// call), a reader for streamed answers (server-sent events), and a fixture that runs a real
// Server on a fresh SQLite store in a temporary directory.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include "server/server.h"
#include "server/store/store.h"

namespace boxcar::server::testing {

namespace http = boost::beast::http;
using Headers = std::map<std::string, std::string>;

struct TestResponse {
  unsigned status = 0;  // 0: no answer (the error is in body)
  Headers headers;      // names lowercased
  std::string body;

  std::string header(const std::string& lowercase_name) const;
  boost::json::value json() const;  // null if the body is not JSON
};

class TestClient {
 public:
  explicit TestClient(uint16_t port) : port_(port) {}

  // Sent with every request unless the request's own headers name them.
  Headers defaults;

  TestResponse request(http::verb method, const std::string& target, const std::string& body = "",
                       const Headers& headers = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
  TestResponse get(const std::string& target) { return request(http::verb::get, target); }
  TestResponse post(const std::string& target, const std::string& body,
                    const Headers& headers = {}) {
    return request(http::verb::post, target, body, headers);
  }
  // One request on a connection of its own (for calls made from another thread).
  static TestResponse once(uint16_t port, http::verb method, const std::string& target,
                           const std::string& body = "", const Headers& headers = {},
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  bool connect();
  TestResponse exchange(http::request<http::string_body>& req, std::chrono::milliseconds timeout,
                        bool& retry);

  uint16_t port_;
  boost::asio::io_context io_;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

// A GET whose answer is read piece by piece as it streams in.
class TestStream {
 public:
  TestStream(uint16_t port, const std::string& target, const Headers& headers = {});
  unsigned status() const { return status_; }
  std::string header(const std::string& name) const;
  // Reads until the text received so far contains `needle`, the body ends, or the time is up.
  bool read_until(const std::string& needle,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));
  const std::string& text() const { return text_; }
  bool finished() const { return parser_.is_done(); }

 private:
  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  http::response_parser<http::buffer_body> parser_;
  unsigned status_ = 0;
  std::string text_;
};

// Runs a Server on 127.0.0.1 (a free port) over a fresh SQLite store.
class ServerFixture : public ::testing::Test {
 protected:
  static constexpr const char* kSecret = "webhook-secret";
  static constexpr const char* kToken = "agent-token-0123456789";
  static constexpr const char* kApiToken = "api-token-0123456789";  // admin, the client's default
  static constexpr const char* kAdminToken = kApiToken;

  void SetUp() override;
  void TearDown() override;
  // Call from a test's SetUp before ServerFixture::SetUp to change options.
  ServerConfig options;

  uint16_t port() const { return server->port(); }
  // {"Authorization": "Bearer kApiToken"} plus `extra`: for requests not made through `client`.
  static Headers api_headers(Headers extra = {});
  // GET a web UI page as a signed-in admin (logs in through POST /login the first time).
  TestResponse web_get(const std::string& target);

  // A registered agent of these tests, registered (POST /register) on first use of its name.
  struct TestAgent {
    int64_t id = 0;
    std::string credential;
  };
  const TestAgent& agent(const std::string& name);
  // The headers agent `name` sends: its credential, and the lease token its last claim of job
  // `job` returned (none when it has none).
  Headers agent_headers(const std::string& name, int64_t job = 0);
  // POSTs as agent `name`; "" = the agent the body's "agent" field names (the server ignores
  // that field: it only picks the identity here), else "a1". A job route also carries that
  // agent's lease on the job.
  TestResponse agent_post(const std::string& target, const boost::json::value& body,
                          const std::string& name = "");
  int64_t submit(const std::string& repo = "https://example.com/r.git");
  // Claims a job as `agent` (nothing queued: 0); its lease token is kept for agent_post.
  int64_t claim(const std::string& agent, int wait_ms = 0);
  // The store's view of agent `name`'s lease on `job` (for calling the store directly).
  LeaseHolder lease_holder(const std::string& name, int64_t job);
  std::map<std::string, TestAgent> agents;
  std::map<std::pair<std::string, int64_t>, std::string> leases;  // (agent, job) -> lease token

  std::string dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<Server> server;
  std::unique_ptr<TestClient> client;  // an admin API client: kApiToken, JSON bodies
  std::string web_cookie;              // "boxcar_session=..." once web_get() logged in
};

}  // namespace boxcar::server::testing
