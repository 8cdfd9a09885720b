// The port routes over real HTTP into a real sandbox. The preview proxy is the agent's
// (agent/ wires SandboxHostOptions::publish_port to PreviewProxy; sandboxes/ cannot depend on
// it), so here the options publish into a recording table: what the routes do with it is under
// test, the proxy itself is tested in agent/ and end to end in tests/sandboxes/.
#include <algorithm>

#include <boost/json.hpp>

#include "sandboxes/host_fixture.h"
#include "sandboxes/sandbox_suite.h"

namespace boxcar::sandboxes {
namespace {

namespace json = boost::json;

class PortsTest : public SandboxSuite {
 protected:
  static void SetUpTestSuite() {
    SandboxHostOptions options;
    options.publish_port = [](executors::Sandbox&, const std::string& id, uint16_t port, const std::string& token) {
      ++published_;
      asked_tokens_.push_back(token);
      protocol::SandboxPort p;
      p.port = port;
      p.token = token.empty() ? "tok" + std::to_string(port) : token;
      p.url = "http://" + std::to_string(port) + "-" + id + "-" + p.token + ".preview.test:8081/";
      p.path_url = "http://127.0.0.1:8081/preview/" + p.token + "/";
      return p;
    };
    options.withdraw_port = [](executors::Sandbox&, uint16_t port) { withdrawn_.push_back(port); };
    auto f = HostFixture::make(std::move(options));
    if (!f) {
      skip_ = f.error().message;
      return;
    }
    f_ = std::move(*f).release();
    auto id = f_->create_sandbox("alice");
    if (id) id_ = *id;
    else skip_ = id.error().message;
  }
  static std::string code(const HttpReply& r) {
    auto v = parse(r.body);
    return v.is_object() ? str(v.as_object(), "code") : "";
  }
  static inline int published_ = 0;
  static inline std::vector<uint16_t> withdrawn_;
  static inline std::vector<std::string> asked_tokens_;  // what each publish_port was given
};

TEST_F(PortsTest, ExposeListWithdraw) {
  HttpReply first = post("/ports", {{"port", 18431}, {"name", "web"}});
  ASSERT_EQ(first.status, 201u) << first.body;
  auto p = parse(first.body).as_object();
  EXPECT_EQ(p.at("port"), 18431);
  EXPECT_EQ(p.at("name"), "web");
  EXPECT_EQ(str(p, "url"), "http://18431-" + id_ + "-tok18431.preview.test:8081/");
  EXPECT_EQ(p.at("listening"), false) << "nothing listens yet";
  EXPECT_EQ(post("/ports", {{"port", 18431}}).status, 200u) << "already exposed";
  EXPECT_EQ(published_, 1);

  // Something listens: the same exposure now says so (bounded by attempts, not time).
  exec({{"command", "python3 -m http.server 18431 --bind 127.0.0.1 >/dev/null 2>&1 </dev/null &"}, {"session", nullptr}});
  auto up = exec({{"command", "for i in $(seq 200); do (echo > /dev/tcp/127.0.0.1/18431) 2>/dev/null && exit 0; "
                              "sleep 0.05; done; exit 1"}});
  ASSERT_EQ(up["exit_code"], 0);
  auto list = parse(get("/ports").body).at("ports").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("listening"), true);

  EXPECT_EQ(f_->call("DELETE", HostFixture::path(id_, "/ports/18431")).status, 204u);
  EXPECT_EQ(withdrawn_, (std::vector<uint16_t>{18431}));
  EXPECT_EQ(parse(get("/ports").body).at("ports").as_array().size(), 0u);
  HttpReply again = f_->call("DELETE", HostFixture::path(id_, "/ports/18431"));
  EXPECT_EQ(again.status, 404u);
  EXPECT_EQ(code(again), "not_found");
}

TEST_F(PortsTest, SixteenPortsAtMostAndBadInput) {
  for (int port = 20000; port < 20016; ++port) ASSERT_EQ(post("/ports", {{"port", port}}).status, 201u) << port;
  HttpReply over = post("/ports", {{"port", 20016}});
  EXPECT_EQ(over.status, 429u);
  EXPECT_EQ(code(over), "limit_reached");
  EXPECT_EQ(post("/ports", {{"port", 20000}}).status, 200u) << "an exposed one is still fine";
  for (int port = 20000; port < 20016; ++port) f_->call("DELETE", HostFixture::path(id_, "/ports/" + std::to_string(port)));

  EXPECT_EQ(code(post("/ports", {{"port", 0}})), "bad_request");
  EXPECT_EQ(code(post("/ports", {{"port", 70000}})), "bad_request");
  HttpReply typo = post("/ports", {{"prot", 8000}});
  EXPECT_EQ(typo.status, 400u);
  EXPECT_NE(typo.body.find("port"), std::string::npos) << typo.body;
  EXPECT_EQ(code(f_->call("DELETE", HostFixture::path(id_, "/ports/http"))), "bad_request");
  // Another owner's sandbox does not exist for it.
  EXPECT_EQ(post("/ports", {{"port", 8000}}, "", "bob").status, 404u);
}

// Last in the suite: it stops the sandbox and restarts the host.
TEST_F(PortsTest, AStoppedOrRestartedSandboxPublishesItsPortsAgainUnderTheSameToken) {
  HttpReply first = post("/ports", {{"port", 18555}, {"name", "app"}});
  ASSERT_EQ(first.status, 201u) << first.body;
  std::string token = str(parse(first.body).as_object(), "token");
  EXPECT_EQ(asked_tokens_.back(), "") << "a new exposure asks for a new token";
  auto listed_token = [&] {
    auto list = parse(get("/ports").body).at("ports").as_array();  // a request: starts it again
    for (const auto& p : list) {
      if (p.at("port") == 18555) return str(p.as_object(), "token");
    }
    return std::string("(not listed)");
  };

  ASSERT_EQ(f_->call("POST", HostFixture::path(id_, "/stop")).status, 200u);
  EXPECT_NE(std::find(withdrawn_.begin(), withdrawn_.end(), 18555), withdrawn_.end()) << "stop withdraws it";
  EXPECT_EQ(listed_token(), token);
  EXPECT_EQ(asked_tokens_.back(), token) << "published again under its old token";

  // An agent restart: the exposure comes back from ports.json with its token and name.
  ASSERT_TRUE(f_->restart_host().ok());
  EXPECT_EQ(listed_token(), token);
  EXPECT_EQ(asked_tokens_.back(), token);
  auto p = parse(get("/ports").body).at("ports").as_array();
  ASSERT_FALSE(p.empty());
  EXPECT_EQ(p.back().at("name"), "app");
}

}  // namespace
}  // namespace boxcar::sandboxes
