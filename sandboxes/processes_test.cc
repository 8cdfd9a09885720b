// Processes: start, list, get, logs (text and SSE, resumed from an offset with no chunk twice),
// wait for exit and for a log line, kill, and the routes' bad input.
#include <boost/json.hpp>

#include "sandboxes/process_table.h"
#include "sandboxes/sandbox_suite.h"

namespace boxcar::sandboxes {
namespace {

namespace json = boost::json;

class ProcessesTest : public SandboxSuite {
 protected:
  static json::object start(const json::value& body) {
    HttpReply r = post("/processes", body);
    EXPECT_EQ(r.status, 201u) << r.body;
    auto v = parse(r.body);
    return v.is_object() ? v.as_object() : json::object{};
  }
  static json::object wait(const std::string& proc, const json::value& body) {
    HttpReply r = post("/processes/" + proc + "/wait", body);
    EXPECT_EQ(r.status, 200u) << r.body;
    auto v = parse(r.body);
    return v.is_object() ? v.as_object() : json::object{};
  }
};

TEST_F(ProcessesTest, StartWaitExitAndGet) {
  auto p = start({{"argv", {"sh", "-c", "echo hi; exit 5"}}, {"id", "short"}});
  EXPECT_EQ(str(p, "id"), "short");
  EXPECT_EQ(str(p, "status"), "running");
  auto w = wait("short", {{"for", "exit"}});
  EXPECT_EQ(w["met"], true);
  EXPECT_EQ(w["exit_code"], 5);
  auto got = parse(get("/processes/short").body);
  EXPECT_EQ(got.at("status"), "failed");
  // RFC 3339 with milliseconds, like every time of the API.
  ASSERT_TRUE(got.at("started_at").is_string()) << got;
  EXPECT_EQ(got.at("started_at").as_string().size(), 24u) << got;
  EXPECT_EQ(got.at("started_at").as_string().back(), 'Z');
  ASSERT_TRUE(got.at("exited_at").is_string()) << got;
  EXPECT_GE(got.at("exited_at").as_string(), got.at("started_at").as_string());
  EXPECT_EQ(got.at("output_bytes"), 3);
  auto list = parse(get("/processes?status=failed").body);
  EXPECT_FALSE(list.at("processes").as_array().empty());
  HttpReply dup = post("/processes", {{"argv", {"true"}}, {"id", "short"}});
  EXPECT_EQ(dup.status, 409u);
}

TEST_F(ProcessesTest, LogsResumeFromAnOffsetWithNoRepeat) {
  start({{"command", "for i in 1 2 3 4 5; do echo line$i; done; echo err >&2"}, {"id", "logs"}});
  wait("logs", {{"for", "exit"}});
  HttpReply all = get("/processes/logs/logs");
  ASSERT_EQ(all.status, 200u);
  EXPECT_EQ(all.body, "line1\nline2\nline3\nline4\nline5\nerr\n");
  HttpReply out = get("/processes/logs/logs?stream=stdout");
  EXPECT_EQ(out.body, "line1\nline2\nline3\nline4\nline5\n");
  // The SSE form: ids are offsets; resuming from the id of any event gives exactly what followed.
  HttpReply sse = get("/processes/logs/logs?follow=1");
  auto events = sse_events(sse.body);
  ASSERT_GE(events.size(), 2u) << sse.body;
  EXPECT_EQ(events.back().first, "exit");
  size_t first_id = sse.body.find("id: ");
  ASSERT_NE(first_id, std::string::npos);
  std::string id = sse.body.substr(first_id + 4, sse.body.find('\n', first_id) - first_id - 4);
  HttpReply resumed = f_->call("GET", HostFixture::path(id_, "/processes/logs/logs?follow=1"), "", "alice",
                               {{"Last-Event-ID", id}});
  std::string before, after;
  bool seen = false;
  for (const auto& [event, data] : events) {
    if (event != "stdout" && event != "stderr") continue;
    (seen ? after : before) += str(data, "data");
    seen = true;
  }
  std::string replay;
  for (const auto& [event, data] : sse_events(resumed.body)) {
    if (event == "stdout" || event == "stderr") replay += str(data, "data");
  }
  EXPECT_EQ(replay, after);
  EXPECT_EQ(before + replay, "line1\nline2\nline3\nline4\nline5\nerr\n") << sse.body;
  HttpReply text = get("/processes/logs/logs?offset=" + id);
  EXPECT_EQ(text.body, after);
  EXPECT_EQ(get("/processes/logs/logs?offset=1").status, 400u);  // not where a chunk starts
  EXPECT_EQ(get("/processes/logs/logs?offset=x").status, 400u);
}

TEST_F(ProcessesTest, WaitForALogLine) {
  start({{"command", "echo starting; echo 'listening on port 8123'; sleep 0.2; echo late"}, {"id", "server"}});
  auto w = wait("server", {{"for", "log"}, {"pattern", "port (\\d+)"}, {"timeout_ms", 30000}});
  EXPECT_EQ(w["met"], true);
  EXPECT_EQ(str(w, "line"), "listening on port 8123");
  EXPECT_EQ(w["groups"].as_array().at(0), "8123");
  auto never = wait("server", {{"for", "log"}, {"pattern", "never printed"}});
  EXPECT_EQ(never["met"], false);
  EXPECT_EQ(str(never, "reason"), "exited");
}

TEST_F(ProcessesTest, WaitForAPortAndItsHttpAnswer) {
  start({{"command", "sleep 0.3; exec python3 -m http.server 8124 --bind 127.0.0.1"}, {"id", "web"}});
  auto up = wait("web", {{"for", "port"}, {"port", 8124}, {"http", "/"}, {"timeout_ms", 30000}});
  EXPECT_EQ(up["met"], true);
  EXPECT_EQ(up["http_status"], 200);
  // Control: a port nobody listens on is not met (timeout), and a process that exits first says so.
  auto closed = wait("web", {{"for", "port"}, {"port", 8125}, {"timeout_ms", 300}});
  EXPECT_EQ(closed["met"], false);
  EXPECT_EQ(str(closed, "reason"), "timeout");
  start({{"argv", {"true"}}, {"id", "quick"}});
  auto gone = wait("quick", {{"for", "port"}, {"port", 8126}, {"timeout_ms", 30000}});
  EXPECT_EQ(gone["met"], false);
  EXPECT_EQ(str(gone, "reason"), "exited");
  EXPECT_EQ(post("/processes/web/wait", {{"for", "port"}, {"port", 0}}).status, 400u);
  HttpReply bad_http = post("/processes/web/wait", {{"for", "port"}, {"port", 8124}, {"http", "x y"}});
  EXPECT_EQ(bad_http.status, 400u);
  EXPECT_EQ(parse(bad_http.body).at("field"), "http");
  f_->call("DELETE", HostFixture::path(id_, "/processes/web?grace_ms=0"));
}

TEST_F(ProcessesTest, KillEndsAProcess) {
  start({{"argv", {"sleep", "300"}}, {"id", "sleeper"}});
  HttpReply r = f_->call("DELETE", HostFixture::path(id_, "/processes/sleeper?grace_ms=0"));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_NE(parse(r.body).at("status"), "running");
  EXPECT_EQ(exec({{"argv", {"true"}}})["exit_code"], 0);
}

TEST_F(ProcessesTest, BadInput) {
  EXPECT_EQ(post("/processes", {{"argv", {"true"}}, {"stdin", "text"}}).status, 400u);
  HttpReply bad_id = post("/processes", {{"argv", {"true"}}, {"id", "a/b"}});
  EXPECT_EQ(bad_id.status, 400u);
  EXPECT_EQ(parse(bad_id.body).at("field"), "id");
  EXPECT_EQ(post("/processes", {{"argv", {"true"}}, {"strem", true}}).status, 400u);
  EXPECT_EQ(get("/processes/nope").status, 404u);
  EXPECT_EQ(parse(get("/processes/nope").body).at("code"), "process_not_found");
  start({{"argv", {"true"}}, {"id", "target"}});
  wait("target", {{"for", "exit"}});
  HttpReply sig = post("/processes/target/signal", {{"signal", "SIGNOPE"}});
  EXPECT_EQ(sig.status, 400u);
  EXPECT_EQ(parse(sig.body).at("field"), "signal");
  HttpReply ended = post("/processes/target/signal", {{"signal", "SIGTERM"}});
  EXPECT_EQ(ended.status, 409u);  // control: a good signal, an ended process
  HttpReply long_re = post("/processes/target/wait", {{"for", "log"}, {"pattern", std::string(1025, 'a')}});
  EXPECT_EQ(long_re.status, 400u);
  EXPECT_EQ(parse(long_re.body).at("field"), "pattern");
  HttpReply bad_re = post("/processes/target/wait", {{"for", "log"}, {"pattern", "(unclosed"}});
  EXPECT_EQ(bad_re.status, 400u);
  HttpReply bad_for = post("/processes/target/wait", {{"for", "exti"}});
  EXPECT_EQ(parse(bad_for.body).at("field"), "for");
  HttpReply stdin_closed = f_->call("POST", HostFixture::path(id_, "/processes/target/stdin"), "x");
  EXPECT_EQ(stdin_closed.status, 409u);
  EXPECT_EQ(parse(stdin_closed.body).at("code"), "not_running");
  HttpReply other = f_->call("GET", HostFixture::path(id_, "/processes/target"), "", "mallory");
  EXPECT_EQ(other.status, 404u);
  EXPECT_EQ(parse(other.body).at("code"), "sandbox_not_found");
  HttpReply cleared = f_->call("DELETE", HostFixture::path(id_, "/processes?status=finished"));
  EXPECT_EQ(cleared.status, 200u);
  EXPECT_EQ(get("/processes/target").status, 404u);
}

TEST_F(ProcessesTest, ExecsShareTheCapOfProcesses) {
  // 255 kept processes and one exec in flight fill the 256: the next exec is refused.
  size_t have = parse(get("/processes").body).at("processes").as_array().size();
  for (size_t i = have; i < ProcessTable::kMaxProcesses - 1; ++i) start({{"argv", {"true"}}});
  bool done = false;
  HttpReply held;
  f_->send("POST", HostFixture::path(id_, "/exec"),
           json::serialize(json::value{{"argv", {"sh", "-c", "touch /tmp/held; while [ ! -e /tmp/go ]; do sleep 0.01; done"}}}),
           [&](HttpReply r) {
             held = std::move(r);
             done = true;
           });
  for (int i = 0; i < 500 && parse(get("/fs/exists?path=/tmp/held").body).at("exists") != true; ++i) {
  }
  HttpReply over = post("/exec", {{"argv", {"true"}}});
  EXPECT_EQ(over.status, 429u) << over.body;
  EXPECT_EQ(parse(over.body).at("code"), "limit_reached");
  HttpReply spawn = post("/processes", {{"argv", {"true"}}});
  EXPECT_EQ(spawn.status, 429u) << "a process counts the exec too: " << spawn.body;
  EXPECT_EQ(f_->call("PUT", HostFixture::path(id_, "/files/tmp/go"), "").status, 201u);
  f_->run_until(done);
  EXPECT_EQ(held.status, 200u) << held.body;
  EXPECT_EQ(post("/exec", {{"argv", {"true"}}}).status, 200u) << "control: the ended exec gave its place back";
  EXPECT_EQ(f_->call("DELETE", HostFixture::path(id_, "/processes?status=finished")).status, 200u);
  EXPECT_EQ(post("/exec", {{"argv", {"true"}}}).status, 200u);
}

}  // namespace
}  // namespace boxcar::sandboxes
