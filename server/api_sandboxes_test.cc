// The sandbox API's control plane against a real Server and a stand-in data plane (a real
// HttpServer on loopback that records what reached it): create/list/get/patch/delete, bad
// input, ownership, limits, reuse and Idempotency-Key, placement, the agents' sync and `lost`.
#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "base/sha256.h"
#include "protocol/json_reader.h"
#include "protocol/sandbox_api.h"
#include "server/api.h"
#include "server/api_tokens.h"
#include "testing/test_client.h"

namespace boxcar::server {
namespace {

namespace json = boost::json;
namespace net = boost::asio;
using testing::Headers;
using testing::TestClient;
using testing::TestResponse;

// A data plane of an agent: answers the server's create and delete, and records each request.
class StandInDataPlane {
 public:
  struct Seen {
    std::string method, target, authorization, owner, body;
  };
  StandInDataPlane() {
    router_.add(http::verb::post, "/agent/v1/sandboxes", [this](HttpRequest& req, std::shared_ptr<Responder> res) {
      record(req);
      auto spec = protocol::sandbox_create_from_json(*protocol::parse_json(req.body()));
      protocol::SandboxReport r;
      r.id = spec ? spec->id : "";
      r.state = "running";
      r.create_ms = 2;
      res->reply(HttpResponse::json(fail_create ? 500 : 201, protocol::to_json(r)));
    });
    router_.add(http::verb::patch, "/agent/v1/sandboxes/{id}", [this](HttpRequest& req, std::shared_ptr<Responder> res) {
      record(req);
      protocol::SandboxReport r;
      r.id = req.params["id"];
      r.state = "running";
      res->reply(HttpResponse::json(fail_patch ? 500 : 200, protocol::to_json(r)));
    });
    router_.add(http::verb::delete_, "/agent/v1/sandboxes/{id}", [this](HttpRequest& req, std::shared_ptr<Responder> res) {
      record(req);
      HttpResponse r;
      r.status = 204;
      res->reply(std::move(r));
    });
    // The public routes the gateway forwards: an echo of what arrived, an upload spooled to
    // disk, and an event stream that ends only when the test says so.
    router_.add(http::verb::get, "/api/v1/sandboxes/{id}/echo", [this](HttpRequest& req, std::shared_ptr<Responder> res) {
      record(req);
      res->reply(HttpResponse::text(200, "echo " + std::string(req.raw.target())));
    });
    RouteOptions spool;
    spool.spool_dir = std::filesystem::temp_directory_path() / "boxcar-gateway-test";
    spool.body_limit = 1ull << 30;
    router_.add(http::verb::put, "/api/v1/sandboxes/{id}/files/{path...}", [this](HttpRequest& req, std::shared_ptr<Responder> res) {
      record(req);
      std::filesystem::remove(req.body_file);
      res->reply(HttpResponse::json(201, {{"size", req.body_bytes}, {"sha256", req.body_sha256}}));
    }, spool);
    router_.add(http::verb::get, "/api/v1/sandboxes/{id}/events", [this](HttpRequest& req, std::shared_ptr<Responder> res) {
      record(req);
      HttpResponse head;
      head.content_type = "text/event-stream";
      res->begin_stream(std::move(head));
      res->write("event: first\ndata: {}\n\n", nullptr);
      std::lock_guard lock(mu_);
      end_stream_ = [res] {
        res->write("event: end\ndata: {}\n\n", nullptr);
        res->end();
      };
    });
    server_ = std::make_unique<HttpServer>(io_, router_);
    port_ = *server_->listen("127.0.0.1", 0);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~StandInDataPlane() {
    net::post(io_, [this] { server_->stop(); });
    work_.reset();
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  Router& router() { return router_; }
  void end_stream() {
    std::function<void()> f;
    {
      std::lock_guard lock(mu_);
      f = std::move(end_stream_);
    }
    if (f) net::post(io_, f);
  }
  bool fail_create = false;
  std::atomic<bool> fail_patch{false};

 private:
  void record(const HttpRequest& req) {
    std::lock_guard lock(mu_);
    seen_.push_back({std::string(req.raw.method_string()), std::string(req.raw.target()),
                     req.header("Authorization"), req.header(protocol::kOwnerHeader), req.body()});
  }
  net::io_context io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{io_.get_executor()};
  Router router_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Seen> seen_;
  std::function<void()> end_stream_;
};

ApiToken token(std::string name, std::optional<int64_t> max = std::nullopt) {
  std::string hash = sha256_hex("secret-" + name);
  ApiToken t{std::move(name), hash, 8u, max};
  t.max_sandboxes = max;
  return t;
}

class ApiSandboxesTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    options.api_tokens = {admin_token("admin", kApiToken), token("alice"), token("bob"),
                          token("carol", 1)};
    ApiToken reader{"reader", sha256_hex("secret-reader"), 1u, std::nullopt};
    options.api_tokens.push_back(reader);
    ServerFixture::SetUp();
  }
  TestResponse as(const std::string& who, http::verb method, const std::string& target,
                  const std::string& body = "", Headers extra = {}) {
    extra["Authorization"] = "Bearer secret-" + who;
    extra["Content-Type"] = "application/json";
    return client->request(method, target, body, extra);
  }
  TestResponse create(const std::string& who, json::object body = {}, Headers extra = {}) {
    return as(who, http::verb::post, "/api/v1/sandboxes", json::serialize(body), std::move(extra));
  }
  // Agent `name` syncs `plane` as its data plane.
  TestResponse sync(const std::string& name, StandInDataPlane& data_plane, int64_t memory = 1 << 30,
                    int64_t slots = 10, json::array sandboxes = {}) {
    return agent_post("/api/v1/agent/sandboxes/sync",
                      json::object{{"endpoint", data_plane.endpoint()}, {"key", "key-" + name},
                                   {"slots_free", slots}, {"memory_free_bytes", memory},
                                   {"sandboxes", std::move(sandboxes)}},
                      name);
  }
  static std::string id_of(const TestResponse& r) {
    auto v = r.json();
    return v.is_object() && v.as_object().contains("id") ? std::string(v.at("id").as_string()) : "";
  }
  StandInDataPlane plane;
};

TEST_F(ApiSandboxesTest, CreateGetListPatchDeleteThroughTheAgent) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  TestResponse made = create("alice", {{"name", "web"}, {"labels", {{"team", "x"}}},
                                       {"resources", {{"memory", "512MiB"}, {"cpus", 1.5}}}});
  ASSERT_EQ(made.status, 201u) << made.body;
  json::object s = made.json().as_object();
  std::string id = id_of(made);
  EXPECT_TRUE(protocol::valid_sandbox_id(id)) << id;
  EXPECT_EQ(s.at("state"), "running");
  EXPECT_EQ(s.at("name"), "web");
  EXPECT_EQ(s.at("agent"), "a1");
  EXPECT_EQ(s.at("create_ms"), 2);
  EXPECT_EQ(s.at("resources").at("memory"), 512 << 20);
  EXPECT_EQ(s.at("resources").at("cpus"), 1.5);
  EXPECT_TRUE(s.at("expires_at").is_string());
  // The agent got the key it reported and the owner, never the caller's token.
  auto seen = plane.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].authorization, "Bearer key-a1");
  EXPECT_EQ(seen[0].owner, "alice");
  EXPECT_EQ(seen[0].body.find("secret-alice"), std::string::npos);

  EXPECT_EQ(as("alice", http::verb::get, "/api/v1/sandboxes/" + id).json().at("labels").at("team"), "x");
  TestResponse listed = as("alice", http::verb::get, "/api/v1/sandboxes?label=team=x");
  ASSERT_EQ(listed.status, 200u) << listed.body;
  EXPECT_EQ(listed.json().at("sandboxes").as_array().size(), 1u);
  EXPECT_TRUE(listed.json().at("next_cursor").is_null());
  TestResponse patched = as("alice", http::verb::patch, "/api/v1/sandboxes/" + id,
                            R"({"keep_alive":true,"ttl_ms":60000,"labels":{"team":"y"}})");
  ASSERT_EQ(patched.status, 200u) << patched.body;
  EXPECT_EQ(patched.json().at("keep_alive"), true);
  EXPECT_EQ(patched.json().at("ttl_ms"), 60000);
  EXPECT_EQ(as("alice", http::verb::get, "/api/v1/sandboxes?label=team=x").json().at("sandboxes").as_array().size(), 0u);

  EXPECT_EQ(as("alice", http::verb::delete_, "/api/v1/sandboxes/" + id).status, 204u);
  seen = plane.seen();
  ASSERT_EQ(seen.size(), 3u);  // create, the keep_alive PATCH, delete
  EXPECT_EQ(seen[2].method, "DELETE");
  EXPECT_EQ(seen[2].target, "/agent/v1/sandboxes/" + id);
  TestResponse again = as("alice", http::verb::delete_, "/api/v1/sandboxes/" + id);
  EXPECT_EQ(again.status, 404u);
  EXPECT_EQ(again.json().at("code"), "sandbox_not_found");
}

TEST_F(ApiSandboxesTest, BadInputNamesTheFieldAndHowToFixIt) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  auto check = [&](json::object body, unsigned status, const char* code, const char* field,
                   const char* says) {
    TestResponse r = create("alice", std::move(body));
    EXPECT_EQ(r.status, status) << r.body;
    auto v = r.json();
    ASSERT_TRUE(v.is_object()) << r.body;
    EXPECT_EQ(v.at("code"), code) << r.body;
    if (field) {
      EXPECT_EQ(v.at("field"), field) << r.body;
    }
    EXPECT_NE(r.body.find(says), std::string::npos) << r.body;
  };
  check({{"nmae", "x"}}, 400, "bad_request", "nmae", "did you mean");
  check({{"resources", {{"memroy", 1}}}}, 400, "bad_request", nullptr, "did you mean");
  check({{"resources", {{"memory", "lots"}}}}, 400, "bad_request", "resources.memory", "512MiB");
  check({{"resources", {{"memory", "9GiB"}}}}, 400, "bad_request", "resources.memory", "maximum of 8");
  check({{"resources", {{"cpus", 3}}}}, 400, "bad_request", "resources.cpus", "maximum of 2");
  check({{"resources", {{"pids", 5000}}}}, 400, "bad_request", "resources.pids", "4096");
  check({{"name", "a b/../c"}}, 400, "bad_request", "name", "letters, digits");
  check({{"ttl_ms", 0}}, 400, "bad_request", "ttl_ms", "--sandbox-max-ttl");
  check({{"ttl_ms", -5}}, 400, "bad_request", "ttl_ms", "whole number");
  // A deadline of INT64_MAX ms would overflow the agent's steady_clock arithmetic.
  check({{"sleep_after_ms", INT64_MAX}}, 400, "bad_request", "sleep_after_ms", "366 days");
  check({{"stop_after_ms", 366LL * 24 * 3600 * 1000 + 1}}, 400, "bad_request", "stop_after_ms", "366 days");
  check({{"network", "host"}}, 400, "bad_request", "network", "egress by the agent");
  check({{"env", {{"1X", "v"}}}}, 400, "bad_request", "env", "variable name");
  check({{"image", "ubuntu"}}, 501, "unsupported", "image", "only");
  TestResponse not_json = as("alice", http::verb::post, "/api/v1/sandboxes", "{");
  EXPECT_EQ(not_json.status, 400u);
  EXPECT_TRUE(plane.seen().empty());  // nothing of it reached an agent
  EXPECT_EQ(as("alice", http::verb::get, "/api/v1/sandboxes?limit=0").status, 400u);
  EXPECT_EQ(as("alice", http::verb::get, "/api/v1/sandboxes?cursor=../x").status, 400u);
}

TEST_F(ApiSandboxesTest, AnotherTokensSandboxIsNotFoundAndAnAdminSeesIt) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  std::string id = id_of(create("alice"));
  ASSERT_FALSE(id.empty());
  // Control: the owner gets it.
  EXPECT_EQ(as("alice", http::verb::get, "/api/v1/sandboxes/" + id).status, 200u);
  for (auto [method, body] : {std::pair{http::verb::get, ""}, std::pair{http::verb::patch, "{}"},
                              std::pair{http::verb::delete_, ""}}) {
    TestResponse r = as("bob", method, "/api/v1/sandboxes/" + id, body);
    EXPECT_EQ(r.status, 404u) << r.body;
    EXPECT_EQ(r.json().at("code"), "sandbox_not_found");
  }
  EXPECT_EQ(as("bob", http::verb::get, "/api/v1/sandboxes").json().at("sandboxes").as_array().size(), 0u);
  EXPECT_EQ(client->get("/api/v1/sandboxes/" + id).status, 200u);  // the admin token
  EXPECT_EQ(client->get("/api/v1/sandboxes").json().at("sandboxes").as_array().size(), 1u);
  // Still there after bob's DELETE.
  EXPECT_EQ(as("alice", http::verb::get, "/api/v1/sandboxes/" + id).status, 200u);
  // No token, an unknown one, a token without the scope.
  TestResponse none = client->request(http::verb::get, "/api/v1/sandboxes", "", {{"Authorization", ""}});
  EXPECT_EQ(none.status, 401u);
  EXPECT_EQ(as("nobody", http::verb::get, "/api/v1/sandboxes").status, 401u);
  TestResponse reader = as("reader", http::verb::get, "/api/v1/sandboxes/" + id);
  EXPECT_EQ(reader.status, 403u);
  EXPECT_EQ(reader.json().at("code"), "permission_denied");
}

TEST_F(ApiSandboxesTest, LimitsPerTokenAndServerAre429) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  ASSERT_EQ(create("carol").status, 201u);
  TestResponse over = create("carol");
  EXPECT_EQ(over.status, 429u) << over.body;
  EXPECT_EQ(over.json().at("code"), "limit_reached");
  EXPECT_NE(over.body.find("max_sandboxes"), std::string::npos);
  EXPECT_EQ(create("alice").status, 201u);  // control: another token is not held back
}

TEST_F(ApiSandboxesTest, ANameInUseIs409OrReusedAndAnIdempotencyKeyGivesTheSameAnswer) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  TestResponse first = create("alice", {{"name", "dev"}});
  ASSERT_EQ(first.status, 201u) << first.body;
  TestResponse again = create("alice", {{"name", "dev"}});
  EXPECT_EQ(again.status, 409u);
  EXPECT_EQ(again.json().at("code"), "exists");
  TestResponse reused = create("alice", {{"name", "dev"}, {"reuse", true}});
  EXPECT_EQ(reused.status, 200u);
  EXPECT_EQ(id_of(reused), id_of(first));
  EXPECT_EQ(create("bob", {{"name", "dev"}}).status, 201u);  // names are per owner

  TestResponse k1 = create("alice", {}, {{"Idempotency-Key", "req-1"}});
  TestResponse k2 = create("alice", {}, {{"Idempotency-Key", "req-1"}});
  ASSERT_EQ(k1.status, 201u);
  EXPECT_EQ(k2.status, 201u);
  EXPECT_EQ(id_of(k1), id_of(k2));
  EXPECT_NE(id_of(create("bob", {}, {{"Idempotency-Key", "req-1"}})), id_of(k1));
  EXPECT_EQ(plane.seen().size(), 4u);  // dev, bob's dev, req-1 once, bob's req-1
}

TEST_F(ApiSandboxesTest, PlacementPicksTheAgentWithAllLabelsAndTheMostMemory) {
  StandInDataPlane big, gpu;
  ASSERT_EQ(sync("small", plane, 1 << 20).status, 200u);
  ASSERT_EQ(sync("big", big, 8ll << 30).status, 200u);
  ASSERT_EQ(sync("full", gpu, 64ll << 30, 0).status, 200u);  // no free slot
  EXPECT_EQ(create("alice").json().at("agent"), "big");
  // Labels come from the agent's registration (claims); give "small" a gpu label.
  ASSERT_TRUE(store->agent_seen(agent("small").id, {"gpu"}, now_ms()));
  EXPECT_EQ(create("alice", {{"agent_labels", {"gpu"}}}).json().at("agent"), "small");
  TestResponse none = create("alice", {{"agent_labels", {"tpu"}}});
  EXPECT_EQ(none.status, 503u);
  EXPECT_EQ(none.json().at("code"), "sandbox_unavailable");
  EXPECT_NE(none.body.find("--sandbox-slots"), std::string::npos);
}

TEST_F(ApiSandboxesTest, AFailedAgentCreateLeavesNoRow) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  plane.fail_create = true;
  TestResponse r = create("alice", {{"name", "x"}});
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(as("alice", http::verb::get, "/api/v1/sandboxes").json().at("sandboxes").as_array().size(), 0u);
  plane.fail_create = false;
  EXPECT_EQ(create("alice", {{"name", "x"}}).status, 201u);  // the name is free
}

TEST_F(ApiSandboxesTest, SyncNamesUnknownSandboxesAndASilentAgentsReadLost) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  std::string id = id_of(create("alice"));
  json::array reported = {json::object{{"id", id}, {"state", "paused"}, {"last_active_at", 5}, {"ports", json::array()}},
                          json::object{{"id", "zzzzzzzzzzzz"}, {"state", "running"}, {"ports", json::array()}}};
  TestResponse r = sync("a1", plane, 1 << 30, 10, reported);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("deleted"), (json::array{"zzzzzzzzzzzz"}));
  EXPECT_EQ(as("alice", http::verb::get, "/api/v1/sandboxes/" + id).json().at("state"), "paused");
  // Another agent reporting alice's sandbox is told to delete it, and changes nothing.
  TestResponse other = sync("a2", plane, 1 << 30, 10, {reported[0]});
  EXPECT_EQ(other.json().at("deleted"), (json::array{json::string(id)}));
  // Bad syncs: no credential, an https or odd endpoint, an unknown state.
  EXPECT_EQ(client->post("/api/v1/agent/sandboxes/sync", "{}").status, 401u);
  TestResponse bad_endpoint = agent_post("/api/v1/agent/sandboxes/sync",
                                         json::object{{"endpoint", "file:///etc"}, {"key", "k"}}, "a1");
  EXPECT_EQ(bad_endpoint.status, 400u);
  EXPECT_EQ(bad_endpoint.json().at("field"), "endpoint");
  // The agent's last sync 20 s ago (3 missed periods): lost.
  SandboxAgentRecord old;
  old.agent_id = agent("a1").id;
  old.endpoint = plane.endpoint();
  old.key = "key-a1";
  ASSERT_TRUE(store->sync_sandboxes(old, {}, now_ms() - 20'000));
  old.agent_id = agent("a2").id;
  ASSERT_TRUE(store->sync_sandboxes(old, {}, now_ms() - 20'000));
  EXPECT_EQ(as("alice", http::verb::get, "/api/v1/sandboxes/" + id).json().at("state"), "lost");
  EXPECT_EQ(as("alice", http::verb::get, "/api/v1/sandboxes?state=lost").json().at("sandboxes").as_array().size(), 1u);
  TestResponse no_agent = create("alice");
  EXPECT_EQ(no_agent.status, 503u);  // and no agent can host a new one
}

TEST_F(ApiSandboxesTest, PatchedTimersReachTheAgentBeforeTheRowAndLabelsAloneStayOnTheServer) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  std::string id = id_of(create("alice"));
  ASSERT_FALSE(id.empty());
  // Labels and the TTL are the server's: the agent hears nothing of them.
  TestResponse labels = as("alice", http::verb::patch, "/api/v1/sandboxes/" + id,
                           R"({"labels":{"team":"z"},"ttl_ms":3600000})");
  ASSERT_EQ(labels.status, 200u) << labels.body;
  EXPECT_EQ(plane.seen().size(), 1u);  // the create only
  // The timers go to the agent, with its key and the owner, as SandboxTimers.
  TestResponse timers = as("alice", http::verb::patch, "/api/v1/sandboxes/" + id,
                           R"({"sleep_after_ms":1000,"keep_alive":true})");
  ASSERT_EQ(timers.status, 200u) << timers.body;
  EXPECT_EQ(timers.json().at("sleep_after_ms"), 1000);
  EXPECT_EQ(timers.json().at("keep_alive"), true);
  auto seen = plane.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].method, "PATCH");
  EXPECT_EQ(seen[1].target, "/agent/v1/sandboxes/" + id);
  EXPECT_EQ(seen[1].authorization, "Bearer key-a1");
  EXPECT_EQ(seen[1].owner, "alice");
  auto sent = protocol::sandbox_timers_from_json(*protocol::parse_json(seen[1].body));
  ASSERT_TRUE(sent) << seen[1].body;
  EXPECT_EQ(sent->sleep_after_ms, 1000);
  EXPECT_EQ(sent->stop_after_ms, 3'600'000);  // unchanged, sent whole
  EXPECT_TRUE(sent->keep_alive);
  // The same values again change nothing on the agent.
  ASSERT_EQ(as("alice", http::verb::patch, "/api/v1/sandboxes/" + id, R"({"keep_alive":true})").status, 200u);
  EXPECT_EQ(plane.seen().size(), 2u);
}

TEST_F(ApiSandboxesTest, PatchedTimersForALostUnreachableOrFailingAgentAre503AndChangeNothing) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  std::string id = id_of(create("alice"));
  ASSERT_FALSE(id.empty());
  auto keep_alive = [&] { return as("alice", http::verb::get, "/api/v1/sandboxes/" + id).json().at("keep_alive"); };
  auto patch = [&] { return as("alice", http::verb::patch, "/api/v1/sandboxes/" + id, R"({"keep_alive":true})"); };
  SandboxAgentRecord a;
  a.agent_id = agent("a1").id;
  a.key = "key-a1";
  a.endpoint = plane.endpoint();
  // Lost: its last sync is 20 s old.
  ASSERT_TRUE(store->sync_sandboxes(a, {}, now_ms() - 20'000));
  TestResponse lost = patch();
  EXPECT_EQ(lost.status, 503u) << lost.body;
  EXPECT_EQ(lost.json().at("code"), "sandbox_unavailable");
  EXPECT_NE(std::string(lost.json().at("error").as_string()).find("nothing was changed"), std::string::npos);
  // Unreachable: synced just now, but nothing listens on its port.
  uint16_t closed;
  {
    net::io_context io;
    net::ip::tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
    closed = acceptor.local_endpoint().port();
  }
  a.endpoint = "http://127.0.0.1:" + std::to_string(closed);
  ASSERT_TRUE(store->sync_sandboxes(a, {}, now_ms()));
  TestResponse down = patch();
  EXPECT_EQ(down.status, 503u) << down.body;
  EXPECT_EQ(down.json().at("code"), "sandbox_unavailable");
  // Reachable, but its answer is a failure.
  a.endpoint = plane.endpoint();
  ASSERT_TRUE(store->sync_sandboxes(a, {}, now_ms()));
  plane.fail_patch = true;
  EXPECT_EQ(patch().status, 503u);
  EXPECT_EQ(keep_alive(), false) << "a refused patch leaves the row as it was";
  // Control: the agent takes it, and the row follows.
  plane.fail_patch = false;
  TestResponse ok = patch();
  EXPECT_EQ(ok.status, 200u) << ok.body;
  EXPECT_EQ(keep_alive(), true);
}

TEST(ApiTokensFile, MaxSandboxesIsAWholeNumberPerToken) {
  std::string sha = sha256_hex("s");
  auto tokens = parse_api_tokens("[[token]]\nname = \"ci\"\nsha256 = \"" + sha +
                                     "\"\nscopes = [\"sandboxes\"]\nmax_sandboxes = 3\n",
                                 "t.toml");
  ASSERT_TRUE(tokens) << tokens.error().message;
  EXPECT_EQ((*tokens)[0].max_sandboxes, 3);
  auto bad = parse_api_tokens("[[token]]\nname = \"ci\"\nsha256 = \"" + sha +
                                  "\"\nscopes = [\"sandboxes\"]\nmax_sandboxes = -1\n",
                              "t.toml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("t.toml:5"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("max_sandboxes must be"), std::string::npos);
  auto typo = parse_api_tokens("[[token]]\nname = \"ci\"\nsha256 = \"" + sha +
                                   "\"\nscopes = [\"sandboxes\"]\nmax_sandbox = 1\n",
                               "t.toml");
  ASSERT_FALSE(typo);
  EXPECT_NE(typo.error().message.find("did you mean \"max_sandboxes\""), std::string::npos)
      << typo.error().message;
}

// The peak resident memory of this process (the server runs in it), in bytes.
int64_t peak_rss() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmHWM:")) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

TEST_F(ApiSandboxesTest, TheGatewayForwardsToTheOwningAgentWithItsKeyNeverTheCallersToken) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  std::string id = id_of(create("alice"));
  TestResponse r = as("alice", http::verb::get, "/api/v1/sandboxes/" + id + "/echo?x=1%202");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, "echo /api/v1/sandboxes/" + id + "/echo?x=1%202");
  auto seen = plane.seen().back();
  EXPECT_EQ(seen.authorization, "Bearer key-a1");
  EXPECT_EQ(seen.owner, "alice");
  // A forged owner header is replaced, never passed on.
  as("alice", http::verb::get, "/api/v1/sandboxes/" + id + "/echo", "", {{"X-Boxcar-Owner", "bob"}});
  EXPECT_EQ(plane.seen().back().owner, "alice");
  for (const auto& s : plane.seen()) EXPECT_EQ(s.authorization.find("secret-"), std::string::npos);
  // Another token: 404 and nothing reaches the agent; an encoded id is no way around it.
  size_t before = plane.seen().size();
  TestResponse other = as("bob", http::verb::get, "/api/v1/sandboxes/" + id + "/echo");
  EXPECT_EQ(other.status, 404u);
  EXPECT_EQ(other.json().at("code"), "sandbox_not_found");
  std::string encoded = "%" + std::to_string(61) + id.substr(1);  // %61 is 'a'
  EXPECT_NE(as("alice", http::verb::get, "/api/v1/sandboxes/" + encoded + "/echo").status, 200u);
  EXPECT_EQ(as("alice", http::verb::get, "/api/v1/sandboxes/" + id + "/../zzzzzzzzzzzz/echo").status, 400u);
  EXPECT_EQ(plane.seen().size(), before);
}

TEST_F(ApiSandboxesTest, AfterAForwardedExchangeTheConnectionIsNotReused) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  std::string id = id_of(create("alice"));
  // Two requests in one write: the second has no token and must never reach the agent.
  net::io_context io;
  net::ip::tcp::socket socket(io);
  socket.connect({net::ip::make_address("127.0.0.1"), port()});
  std::string two = "GET /api/v1/sandboxes/" + id + "/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Authorization: Bearer secret-alice\r\n\r\n"
                    "GET /api/v1/sandboxes/" + id + "/echo?smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  net::write(socket, net::buffer(two));
  std::string got;
  boost::system::error_code ec;
  net::read(socket, net::dynamic_buffer(got), ec);  // until the server closes
  EXPECT_NE(got.find("echo /api/v1/sandboxes/" + id + "/echo"), std::string::npos) << got;
  EXPECT_EQ(got.find("smuggled"), std::string::npos) << got;
  for (const auto& s : plane.seen()) EXPECT_EQ(s.target.find("smuggled"), std::string::npos);
}

TEST_F(ApiSandboxesTest, TheGatewayStreamsA64MiBUploadAndServerSentEventsAsTheyCome) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  std::string id = id_of(create("alice"));
  // The event arrives while the agent's stream is still open.
  testing::TestStream events(port(), "/api/v1/sandboxes/" + id + "/events",
                             {{"Authorization", "Bearer secret-alice"}});
  EXPECT_EQ(events.status(), 200u);
  ASSERT_TRUE(events.read_until("event: first")) << events.text();
  EXPECT_FALSE(events.finished());
  plane.end_stream();
  ASSERT_TRUE(events.read_until("event: end")) << events.text();

  // 64 MiB sent in 1 MiB writes from one buffer; the server relays it without holding it.
  int64_t peak_before = peak_rss();
  constexpr size_t kTotal = 64u << 20;
  std::string piece(1 << 20, 'x');
  net::io_context io;
  net::ip::tcp::socket socket(io);
  socket.connect({net::ip::make_address("127.0.0.1"), port()});
  std::string head = "PUT /api/v1/sandboxes/" + id + "/files/big HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer secret-alice\r\nContent-Length: " +
                     std::to_string(kTotal) + "\r\n\r\n";
  net::write(socket, net::buffer(head));
  Sha256 hash;
  for (size_t sent = 0; sent < kTotal; sent += piece.size()) {
    net::write(socket, net::buffer(piece));
    hash.update(piece.data(), piece.size());
  }
  std::string got;
  boost::system::error_code ec;
  net::read(socket, net::dynamic_buffer(got), ec);
  EXPECT_NE(got.find("HTTP/1.1 201"), std::string::npos) << got.substr(0, 300);
  EXPECT_NE(got.find(hash.hex()), std::string::npos) << got.substr(0, 300);
  EXPECT_NE(got.find("67108864"), std::string::npos);
  int64_t grew = peak_rss() - peak_before;
  std::cout << "peak RSS growth over the 64 MiB upload: " << (grew >> 10) << " KiB\n";
  EXPECT_LT(grew, 24ll << 20);
}

TEST_F(ApiSandboxesTest, ALostOrUnreachableAgentIs503) {
  ASSERT_EQ(sync("a1", plane).status, 200u);
  std::string id = id_of(create("alice"));
  SandboxAgentRecord a;
  a.agent_id = agent("a1").id;
  a.key = "key-a1";
  // Unreachable: a port nothing listens on (bound and closed again).
  uint16_t closed;
  {
    net::io_context io;
    net::ip::tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
    closed = acceptor.local_endpoint().port();
  }
  a.endpoint = "http://127.0.0.1:" + std::to_string(closed);
  ASSERT_TRUE(store->sync_sandboxes(a, {}, now_ms()));
  TestResponse down = as("alice", http::verb::get, "/api/v1/sandboxes/" + id + "/echo");
  EXPECT_EQ(down.status, 503u) << down.body;
  EXPECT_EQ(down.json().at("code"), "sandbox_unavailable");
  a.endpoint = plane.endpoint();
  ASSERT_TRUE(store->sync_sandboxes(a, {}, now_ms()));
  EXPECT_EQ(as("alice", http::verb::get, "/api/v1/sandboxes/" + id + "/echo").status, 200u);  // control
  ASSERT_TRUE(store->sync_sandboxes(a, {}, now_ms() - 20'000));
  TestResponse lost = as("alice", http::verb::get, "/api/v1/sandboxes/" + id + "/echo");
  EXPECT_EQ(lost.status, 503u);
  EXPECT_EQ(lost.json().at("code"), "sandbox_unavailable");
}

}  // namespace
}  // namespace boxcar::server
