// Pause, resume, stop, the idle timers, PATCH of the timers, metrics and events (SANDBOXES.md
// §1.3, §2.1) on a SandboxHost with real native sandboxes over real HTTP. The timers are small
// and the io_context runs until the state changes (bounded: a broken timer fails the test).
#include <gtest/gtest.h>

#include <fstream>

#include <boost/json.hpp>

#include "protocol/json_reader.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/host_fixture.h"

namespace boxcar::sandboxes {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class PauseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto f = HostFixture::make();
    if (!f) {
      skip_ = f.error().message;
      return;
    }
    f_ = std::move(*f).release();
  }
  static void TearDownTestSuite() {
    delete f_;
    f_ = nullptr;
  }
  void SetUp() override {
    if (f_ == nullptr) GTEST_SKIP() << skip_;
  }
  void TearDown() override {
    for (const auto& id : made_) f_->remove_sandbox(id);
  }
  static json::value parse(const std::string& body) {
    auto v = protocol::parse_json(body);
    return v ? *v : json::value();
  }
  std::string make(int64_t sleep_ms, int64_t stop_ms, bool keep_alive = false) {
    protocol::SandboxCreate spec;
    spec.timers.sleep_after_ms = sleep_ms;
    spec.timers.stop_after_ms = stop_ms;
    spec.timers.keep_alive = keep_alive;
    auto id = f_->create_sandbox("alice", spec);
    EXPECT_TRUE(id.ok()) << id.error().message;
    if (!id) return {};
    made_.push_back(*id);
    return *id;
  }
  static std::string state(const std::string& id) {
    ApiSandbox* sb = f_->host().find(id);
    return sb ? sb->state_ : "gone";
  }
  // Runs the io_context until `id` is in `want` (at most ~20 s: the timers here are 200 ms).
  static bool run_until_state(const std::string& id, const std::string& want) {
    for (int i = 0; i < 2000 && state(id) != want; ++i) {
      f_->io().restart();
      f_->io().run_for(std::chrono::milliseconds(10));
    }
    return state(id) == want;
  }
  static json::value exec(const std::string& id, const std::string& script) {
    HttpReply r = f_->call_json("POST", HostFixture::path(id, "/exec"), json::object{{"argv", {"sh", "-c", script}}});
    return parse(r.body);
  }
  static std::string out(const json::value& v) {
    return v.is_object() && v.as_object().contains("stdout") ? std::string(v.at("stdout").as_string()) : "";
  }

  static inline HostFixture* f_ = nullptr;
  static inline std::string skip_;
  std::vector<std::string> made_;
};

TEST_F(PauseTest, IdlePausesThenStopsKeepingTheWorkspace) {
  std::string id = make(200, 200);
  std::string kept = make(200, 200, /*keep_alive=*/true);  // control: the same timers, kept alive
  ASSERT_FALSE(id.empty() || kept.empty());
  EXPECT_EQ(out(exec(id, "echo data > /workspace/keep; sleep 600 >/dev/null 2>&1 & echo started")), "started\n");
  ASSERT_TRUE(run_until_state(id, "paused"));
  EXPECT_EQ(state(kept), "running");
  ASSERT_TRUE(run_until_state(id, "stopped"));
  EXPECT_EQ(state(kept), "running");
  ApiSandbox* sb = f_->host().find(id);
  ASSERT_NE(sb, nullptr);
  EXPECT_FALSE(sb->running());  // processes and mounts gone
  std::ifstream in(sb->workspace_dir() / "keep");
  std::string data;
  std::getline(in, data);
  EXPECT_EQ(data, "data");
  // The next request starts it again, on the same /workspace, without the old processes.
  EXPECT_EQ(out(exec(id, "cat /workspace/keep; pgrep -x sleep || echo none")), "data\nnone\n");
  EXPECT_EQ(state(id), "running");
}

TEST_F(PauseTest, ARequestThawsAPausedSandboxAndItsProcessContinues) {
  std::string id = make(0, 0);
  std::string pid = out(exec(id, "sleep 600 >/dev/null 2>&1 & echo $!"));
  ASSERT_FALSE(pid.empty());
  pid.pop_back();
  HttpReply paused = f_->call("POST", HostFixture::path(id, "/pause"));
  ASSERT_EQ(paused.status, 200u) << paused.body;
  EXPECT_EQ(parse(paused.body).at("state"), "paused");
  EXPECT_EQ(f_->call("POST", HostFixture::path(id, "/pause")).status, 200u);  // idempotent
  // Metrics read the cgroups: a paused sandbox answers and stays paused.
  HttpReply m = f_->call("GET", HostFixture::path(id, "/metrics"));
  ASSERT_EQ(m.status, 200u) << m.body;
  EXPECT_GE(parse(m.body).at("pids").to_number<int64_t>(), 2);
  EXPECT_EQ(state(id), "paused");
  // Another owner cannot pause or read it (control beside: alice can).
  EXPECT_EQ(f_->call("GET", HostFixture::path(id, "/metrics"), "", "mallory").status, 404u);
  EXPECT_EQ(f_->call("POST", HostFixture::path(id, "/resume"), "", "mallory").status, 404u);
  EXPECT_EQ(state(id), "paused");
  // A data-plane request thaws it before it is served: the same process is still there.
  EXPECT_EQ(out(exec(id, "kill -0 " + pid + " && echo alive")), "alive\n");
  EXPECT_EQ(state(id), "running");
}

TEST_F(PauseTest, ExplicitStopAndResume) {
  std::string id = make(0, 0);
  exec(id, "echo x > /workspace/x");
  HttpReply stopped = f_->call("POST", HostFixture::path(id, "/stop"));
  ASSERT_EQ(stopped.status, 200u) << stopped.body;
  EXPECT_EQ(parse(stopped.body).at("state"), "stopped");
  HttpReply pause = f_->call("POST", HostFixture::path(id, "/pause"));  // nothing to freeze
  EXPECT_EQ(pause.status, 409u) << pause.body;
  EXPECT_EQ(parse(pause.body).at("code"), "not_running");
  HttpReply m = f_->call("GET", HostFixture::path(id, "/metrics"));  // does not start it
  ASSERT_EQ(m.status, 200u);
  EXPECT_EQ(parse(m.body).at("pids"), 0);
  EXPECT_GT(parse(m.body).at("disk_bytes").to_number<int64_t>(), 0);
  EXPECT_EQ(state(id), "stopped");
  HttpReply resumed = f_->call("POST", HostFixture::path(id, "/resume"));
  ASSERT_EQ(resumed.status, 200u) << resumed.body;
  EXPECT_EQ(parse(resumed.body).at("state"), "running");
  EXPECT_EQ(out(exec(id, "cat /workspace/x")), "x\n");
}

TEST_F(PauseTest, PatchReplacesTheTimersAndKeepsThemInMeta) {
  std::string id = make(600000, 0);
  std::string path = "/agent/v1/sandboxes/" + id;
  HttpReply bad = f_->call("PATCH", path, R"({"sleep_after_ms": -1})", "");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_NE(bad.body.find("sleep_after_ms"), std::string::npos) << bad.body;
  HttpReply huge = f_->call("PATCH", path, R"({"stop_after_ms": 9223372036854775807})", "");
  EXPECT_EQ(huge.status, 400u) << "a deadline past steady_clock's range: " << huge.body;
  HttpReply unknown = f_->call("PATCH", path, R"({"sleep_after_msec": 5})", "");
  EXPECT_EQ(unknown.status, 400u) << unknown.body;
  EXPECT_EQ(f_->call("PATCH", path, R"({"sleep_after_ms": 100})", "", {{"Authorization", "Bearer nope"}}).status, 401u);
  EXPECT_EQ(f_->call("PATCH", "/agent/v1/sandboxes/aaaaaaaaaaaa", R"({})", "").status, 404u);
  EXPECT_EQ(state(id), "running");
  HttpReply ok = f_->call("PATCH", path, R"({"sleep_after_ms": 100, "stop_after_ms": 0})", "");
  ASSERT_EQ(ok.status, 200u) << ok.body;
  EXPECT_EQ(std::string(parse(ok.body).at("id").as_string()), id);
  std::ifstream meta(f_->data_dir() / "sandboxes" / id / "meta.json");
  std::string text((std::istreambuf_iterator<char>(meta)), {});
  auto spec = protocol::sandbox_create_from_json(parse(text));
  ASSERT_TRUE(spec.ok()) << text;
  EXPECT_EQ(spec->timers.sleep_after_ms, 100);
  EXPECT_TRUE(run_until_state(id, "paused"));
}

TEST_F(PauseTest, ARestartedAgentKeepsThePatchedTimers) {
  std::string id = make(600000, 3600000);
  HttpReply ok = f_->call("PATCH", "/agent/v1/sandboxes/" + id, R"({"sleep_after_ms": 0, "keep_alive": true})", "");
  ASSERT_EQ(ok.status, 200u) << ok.body;
  ASSERT_TRUE(f_->restart_host().ok());
  ApiSandbox* sb = f_->host().find(id);
  ASSERT_NE(sb, nullptr);
  EXPECT_EQ(sb->state_, "stopped");
  EXPECT_EQ(sb->timers().sleep_after_ms, 0);
  EXPECT_EQ(sb->timers().stop_after_ms, 3600000);  // control: what PATCH sent replaced, the rest default
  EXPECT_TRUE(sb->timers().keep_alive);
}

TEST_F(PauseTest, EventsStreamStateChangesAndProcessExits) {
  std::string id = make(0, 0);
  HttpReply events;
  bool done = false;
  f_->send("GET", HostFixture::path(id, "/events"), "", [&](HttpReply r) {
    events = std::move(r);
    done = true;
  });
  ApiSandbox* sb = f_->host().find(id);
  for (int i = 0; i < 2000 && sb->events().subscribers() == 0; ++i) {
    f_->io().restart();
    f_->io().run_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(sb->events().subscribers(), 1u);
  HttpReply p = f_->call_json("POST", HostFixture::path(id, "/processes"),
                              json::object{{"id", "quick"}, {"argv", {"sh", "-c", "exit 3"}}});
  ASSERT_EQ(p.status, 201u) << p.body;
  EXPECT_EQ(f_->call_json("POST", HostFixture::path(id, "/processes/quick/wait"), json::object{{"for", "exit"}, {"timeout_ms", 10000}}).status, 200u);
  EXPECT_EQ(f_->call("POST", HostFixture::path(id, "/pause")).status, 200u);
  EXPECT_EQ(f_->call("POST", HostFixture::path(id, "/resume")).status, 200u);
  made_.clear();
  ASSERT_TRUE(f_->remove_sandbox(id));  // ends the stream
  f_->run_until(done);
  ASSERT_EQ(events.status, 200u) << events.body;
  const std::string& b = events.body;
  auto at = [&](const std::string& s) { return b.find(s); };
  ASSERT_NE(at("event: process_exit\ndata: {\"id\":\"quick\""), std::string::npos) << b;
  EXPECT_NE(b.find("\"exit_code\":3"), std::string::npos) << b;
  size_t paused = at("event: state\ndata: {\"state\":\"paused\"}");
  ASSERT_NE(paused, std::string::npos) << b;
  EXPECT_NE(b.find("event: state\ndata: {\"state\":\"running\"}", paused), std::string::npos) << b;
  EXPECT_NE(at("event: end"), std::string::npos) << b;
}

TEST(EventBusTest, ASlowSubscriberLosesTheOldestAndIsToldHowMany) {
  EventBus bus;
  auto sub = bus.subscribe(nullptr);
  for (size_t i = 0; i < EventBus::kQueue + 5; ++i) bus.publish("port", json::object{{"port", i}});
  std::string first = sub->take();
  EXPECT_NE(first.find("event: overflow\ndata: {\"dropped\":5}"), std::string::npos) << first;
  std::string next = sub->take();
  EXPECT_NE(next.find("{\"port\":5}"), std::string::npos) << next;  // 0-4 went
  size_t rest = 1;
  while (!sub->take().empty()) ++rest;
  EXPECT_EQ(rest, EventBus::kQueue);
  // Control: a subscriber that keeps up loses nothing.
  auto quick = bus.subscribe(nullptr);
  bus.publish("port", json::object{{"port", 1}});
  EXPECT_NE(quick->take().find("event: port"), std::string::npos);
  EXPECT_TRUE(quick->take().empty());
}

}  // namespace
}  // namespace boxcar::sandboxes
