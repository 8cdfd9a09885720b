#include "testing/test_client.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>

#include <boost/asio/connect.hpp>
#include <boost/json.hpp>

#include "base/sha256.h"
#include "protocol/agent_paths.h"

namespace boxcar::server::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace json = boost::json;
using tcp = net::ip::tcp;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

template <typename Fields>
Headers collect(const Fields& fields) {
  Headers out;
  for (const auto& f : fields) out[lower(std::string(f.name_string()))] = std::string(f.value());
  return out;
}

// Runs the io_context until the pending operation completes (the stream's expiry bounds it).
void run(net::io_context& io) {
  io.restart();
  io.run();
}

}  // namespace

std::string TestResponse::header(const std::string& lowercase_name) const {
  auto it = headers.find(lowercase_name);
  return it == headers.end() ? "" : it->second;
}

json::value TestResponse::json() const {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  return ec ? json::value(nullptr) : v;
}

bool TestClient::connect() {
  stream_.emplace(io_);
  buffer_.clear();
  beast::error_code ec;
  stream_->socket().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ec);
  return !ec;
}

TestResponse TestClient::request(http::verb method, const std::string& target,
                                 const std::string& body, const Headers& headers,
                                 std::chrono::milliseconds timeout) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : defaults) req.set(k, v);
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  if (method != http::verb::get || !body.empty()) req.prepare_payload();
  bool retry = stream_.has_value();  // a kept-alive connection may have been closed meanwhile
  if (!stream_ && !connect()) return TestResponse{0, {}, "cannot connect"};
  TestResponse r = exchange(req, timeout, retry);
  if (r.status == 0 && retry) {
    if (!connect()) return TestResponse{0, {}, "cannot connect"};
    bool again = false;
    r = exchange(req, timeout, again);
  }
  return r;
}

TestResponse TestClient::exchange(http::request<http::string_body>& req,
                                  std::chrono::milliseconds timeout, bool& retry) {
  beast::error_code ec;
  stream_->expires_after(timeout);
  http::async_write(*stream_, req, [&](beast::error_code e, size_t) { ec = e; });
  run(io_);
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  if (!ec) {
    http::async_read(*stream_, buffer_, parser, [&](beast::error_code e, size_t) { ec = e; });
    run(io_);
  }
  if (ec) {
    // Only a connection that died before any answer is worth one retry.
    retry = retry && !parser.is_header_done() && ec != beast::error::timeout;
    stream_.reset();
    return TestResponse{0, {}, ec.message()};
  }
  retry = false;
  auto res = parser.release();
  TestResponse out{res.result_int(), collect(res), std::move(res.body())};
  if (!res.keep_alive()) stream_.reset();
  return out;
}

TestResponse TestClient::once(uint16_t port, http::verb method, const std::string& target,
                              const std::string& body, const Headers& headers,
                              std::chrono::milliseconds timeout) {
  TestClient c(port);
  return c.request(method, target, body, headers, timeout);
}

TestStream::TestStream(uint16_t port, const std::string& target, const Headers& headers)
    : stream_(io_) {
  beast::error_code ec;
  stream_.socket().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return;
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  stream_.expires_after(std::chrono::seconds(10));
  http::async_write(stream_, req, [&](beast::error_code e, size_t) { ec = e; });
  run(io_);
  if (ec) return;
  http::async_read_header(stream_, buffer_, parser_, [&](beast::error_code e, size_t) { ec = e; });
  run(io_);
  if (!ec) status_ = parser_.get().result_int();
}

std::string TestStream::header(const std::string& name) const {
  auto it = parser_.get().find(name);
  return it == parser_.get().end() ? "" : std::string(it->value());
}

bool TestStream::read_until(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (text_.find(needle) == std::string::npos) {
    if (status_ == 0 || parser_.is_done()) return false;
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::milliseconds(0)) return false;
    char buf[4096];
    parser_.get().body().data = buf;
    parser_.get().body().size = sizeof buf;
    beast::error_code ec;
    stream_.expires_after(left);
    http::async_read_some(stream_, buffer_, parser_, [&](beast::error_code e, size_t) { ec = e; });
    run(io_);
    text_.append(buf, sizeof buf - parser_.get().body().size);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return text_.find(needle) != std::string::npos;
  }
  return true;
}

void ServerFixture::SetUp() {
  char tmpl[] = "/tmp/boxcar-server-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  dir = tmpl;
  auto opened = open_store("sqlite:" + dir + "/boxcar.db");
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  store = std::move(*opened);
  auto migrated = store->migrate();
  ASSERT_TRUE(migrated.ok()) << migrated.error().message;
  options.listen_address = "127.0.0.1";
  options.port = 0;
  if (options.webhook_secret.empty()) options.webhook_secret = kSecret;
  if (options.agent_token.empty()) options.agent_token = kToken;
  if (options.api_tokens.empty()) options.api_tokens.push_back(admin_token("test", kApiToken));
  server = std::make_unique<Server>(*store, options);
  auto started = server->start();
  ASSERT_TRUE(started.ok()) << started.error().message;
  client = std::make_unique<TestClient>(server->port());
  client->defaults = api_headers({{"Content-Type", "application/json"}});
}

TestResponse ServerFixture::web_get(const std::string& target) {
  if (web_cookie.empty()) {
    TestResponse login = client->post("/login", std::string("token=") + kApiToken,
                                      {{"Content-Type", "application/x-www-form-urlencoded"}});
    std::string cookie = login.header("set-cookie");
    EXPECT_EQ(login.status, 303u) << login.body;
    web_cookie = cookie.substr(0, cookie.find(';'));
  }
  return client->request(http::verb::get, target, "", {{"Cookie", web_cookie}});
}

Headers ServerFixture::api_headers(Headers extra) {
  extra.emplace("Authorization", std::string("Bearer ") + kApiToken);
  return extra;
}

void ServerFixture::TearDown() {
  client.reset();
  if (server) server->stop();
  server.reset();
  store.reset();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::remove_all(dir, ec);
}

const ServerFixture::TestAgent& ServerFixture::agent(const std::string& name) {
  auto it = agents.find(name);
  if (it != agents.end()) return it->second;
  TestResponse r = client->post(std::string(protocol::kAgentRegisterPath),
                                json::serialize(json::object{{"name", name}}),
                                {{"Authorization", std::string("Bearer ") + kToken}});
  EXPECT_EQ(r.status, 201u) << r.body;
  TestAgent a;
  if (r.status == 201) {
    a.id = r.json().at("agent_id").as_int64();
    a.credential = std::string(r.json().at("credential").as_string());
  }
  return agents.emplace(name, a).first->second;
}

Headers ServerFixture::agent_headers(const std::string& name, int64_t job) {
  Headers h{{"Authorization", "Bearer " + agent(name).credential},
            {"Content-Type", "application/json"}};
  auto lease = leases.find({name, job});
  if (lease != leases.end()) h["X-Boxcar-Lease"] = lease->second;
  return h;
}

LeaseHolder ServerFixture::lease_holder(const std::string& name, int64_t job) {
  return LeaseHolder{agent(name).id, name, sha256_hex(leases[{name, job}])};
}

TestResponse ServerFixture::agent_post(const std::string& target, const json::value& body,
                                       const std::string& name) {
  std::string who = name;
  if (who.empty() && body.is_object() && body.as_object().contains("agent")) {
    who = std::string(body.at("agent").as_string());
  }
  if (who.empty()) who = "a1";
  int64_t job = 0;
  constexpr std::string_view kJobs = protocol::kAgentJobsPrefix;
  if (target.rfind(kJobs, 0) == 0) job = std::atoll(target.c_str() + kJobs.size());
  return client->post(target, json::serialize(body), agent_headers(who, job));
}

int64_t ServerFixture::submit(const std::string& repo) {
  TestResponse r = client->post("/api/v1/jobs", json::serialize(json::object{{"repo", repo}}));
  EXPECT_EQ(r.status, 201u) << r.body;
  json::value v = r.json();
  return v.is_object() && v.as_object().contains("id") ? v.at("id").as_int64() : 0;
}

int64_t ServerFixture::claim(const std::string& agent, int wait_ms) {
  TestResponse r = agent_post(std::string(protocol::kAgentClaimPath), json::object{{"wait_ms", wait_ms}}, agent);
  if (r.status != 200) return 0;
  int64_t id = r.json().at("job").at("id").as_int64();
  leases[{agent, id}] = std::string(r.json().at("job").at("lease_token").as_string());
  return id;
}

}  // namespace boxcar::server::testing
