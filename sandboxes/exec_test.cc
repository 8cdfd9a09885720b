// POST /exec: argv and shell forms, exit codes, output and truncation, stdin, env, cwd, streaming,
// and every bad input answered with the field it is about.
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "sandboxes/sandbox_suite.h"

namespace boxcar::sandboxes {
namespace {

namespace json = boost::json;

class ExecTest : public SandboxSuite {};

TEST_F(ExecTest, ArgvExitCodeAndOutput) {
  auto r = exec({{"argv", {"sh", "-c", "echo out; echo err >&2; exit 3"}}});
  EXPECT_EQ(str(r, "outcome"), "failed");
  EXPECT_EQ(r["exit_code"], 3);
  EXPECT_EQ(str(r, "stdout"), "out\n");
  EXPECT_EQ(str(r, "stderr"), "err\n");
  EXPECT_EQ(r["stdout_truncated"], false);
  EXPECT_TRUE(r["duration_ms"].is_double());
  auto ok = exec({{"argv", {"true"}}});
  EXPECT_EQ(str(ok, "outcome"), "ok");
  EXPECT_EQ(ok["exit_code"], 0);
  EXPECT_TRUE(ok["signal"].is_null());
}

TEST_F(ExecTest, ShellFormAndCwdAndEnv) {
  auto r = exec({{"command", "echo $A-$B | tr a-z A-Z; pwd"}, {"env", {{"A", "x"}, {"B", "y"}}}, {"cwd", "/tmp"},
                 {"session", nullptr}});
  EXPECT_EQ(str(r, "stdout"), "X-Y\n/tmp\n") << r;
  auto rel = exec({{"argv", {"pwd"}}, {"cwd", "sub"}, {"session", nullptr}});
  EXPECT_EQ(str(rel, "outcome"), "failed");  // /workspace/sub does not exist
  EXPECT_EQ(exec({{"argv", {"pwd"}}, {"session", nullptr}})["stdout"], "/workspace\n");
  auto home = exec({{"argv", {"sh", "-c", "echo $HOME $BOXCAR_SANDBOX; test -z \"$PATH_DROPPED\""}},
                    {"env", {{"PATH_DROPPED", nullptr}}}});
  EXPECT_EQ(str(home, "stdout"), "/root " + id_ + "\n");
  auto drop = exec({{"argv", {"/usr/bin/env"}}, {"env", {{"HOME", nullptr}}}});
  EXPECT_EQ(str(drop, "stdout").find("HOME="), std::string::npos) << drop;
  auto keep = exec({{"argv", {"/usr/bin/env"}}});
  EXPECT_NE(str(keep, "stdout").find("HOME=/root"), std::string::npos);  // control
}

TEST_F(ExecTest, TheHostnameIsTheSandboxId) {
  auto r = exec({{"argv", {"hostname"}}});
  EXPECT_EQ(str(r, "stdout"), id_ + "\n");
}

TEST_F(ExecTest, OutputPastMaxOutputIsTruncatedNotKilled) {
  auto r = exec({{"command", "head -c 3000 /dev/zero | tr '\\0' a; echo done >&2"}, {"max_output", 1000}});
  EXPECT_EQ(str(r, "outcome"), "ok");
  EXPECT_EQ(str(r, "stdout").size(), 1000u);
  EXPECT_EQ(r["stdout_truncated"], true);
  EXPECT_EQ(str(r, "stderr"), "done\n");
  EXPECT_EQ(r["stderr_truncated"], false);
  auto sized = exec({{"command", "head -c 3000 /dev/zero"}, {"max_output", "2KiB"}});
  EXPECT_EQ(sized["stdout_truncated"], true);
}

TEST_F(ExecTest, BytesThatAreNotUtf8ComeAsBase64) {
  auto r = exec({{"command", "printf 'a\\377b'"}});
  EXPECT_EQ(str(r, "stdout_b64"), "Yf9i");
  auto text = exec({{"command", "printf 'h\\303\\251'"}});
  EXPECT_EQ(str(text, "stdout"), "h\xc3\xa9");
  EXPECT_EQ(text.if_contains("stdout_b64"), nullptr);
}

TEST_F(ExecTest, Stdin) {
  if (!has_exec_control()) GTEST_SKIP() << "the executor gives no ExecControl (stdin) yet";
  auto r = exec({{"argv", {"cat"}}, {"stdin", "hello\n"}});
  EXPECT_EQ(str(r, "stdout"), "hello\n");
  auto b = exec({{"argv", {"cat"}}, {"stdin_b64", "aGk="}});
  EXPECT_EQ(str(b, "stdout"), "hi");
  auto none = exec({{"argv", {"cat"}}});
  EXPECT_EQ(str(none, "stdout"), "");  // control: /dev/null
}

TEST_F(ExecTest, ATimeoutKillsTheCommandsSetsidDaemonAndNothingElse) {
  if (!has_exec_control()) GTEST_SKIP() << "the executor gives no ExecControl (trees) yet";
  // A bystander the timeout must not touch, and a command that leaves a daemon in a session of
  // its own (out of its process group: only its cgroup tree still holds it).
  ASSERT_EQ(exec({{"command", "setsid sleep 1000 > /dev/null 2>&1 < /dev/null & echo $! > /tmp/bystander"}})["exit_code"], 0);
  auto r = exec({{"command", "setsid sleep 1000 > /dev/null 2>&1 < /dev/null & echo $! > /tmp/daemon; sleep 1000"},
                 {"timeout_ms", 300}, {"grace_ms", 100}});
  EXPECT_EQ(str(r, "outcome"), "timeout");
  auto daemon = exec({{"command", "kill -0 $(cat /tmp/daemon) 2>/dev/null && echo alive || echo gone"}});
  EXPECT_EQ(str(daemon, "stdout"), "gone\n");
  // Control: the probe sees a live process (the bystander, which the timeout left alone).
  auto bystander = exec({{"command", "kill -0 $(cat /tmp/bystander) 2>/dev/null && echo alive || echo gone"}});
  EXPECT_EQ(str(bystander, "stdout"), "alive\n");
  exec({{"command", "kill $(cat /tmp/bystander)"}});
}

TEST_F(ExecTest, RemovingASandboxAnswersTheExecRunningInIt) {
  auto doomed = f_->create_sandbox("alice");
  ASSERT_TRUE(doomed.ok()) << doomed.error().message;
  bool done = false;
  HttpReply answer;
  f_->send("POST", HostFixture::path(*doomed, "/exec"), R"({"argv": ["sleep", "300"], "timeout_ms": 600000})",
           [&](HttpReply r) {
             answer = std::move(r);
             done = true;
           });
  // Once it runs, the sandbox goes away. (Not a second request to find out: it would queue
  // behind the first on the fixture's one connection.)
  bool started = false;
  boost::asio::steady_timer settle(f_->host().io(), std::chrono::milliseconds(500));
  settle.async_wait([&](const boost::system::error_code&) { started = true; });
  f_->run_until(started);
  // Straight on the host: over HTTP the DELETE would queue behind the exec on the connection.
  EXPECT_TRUE(f_->host().remove(*doomed));
  f_->run_until(done);
  EXPECT_EQ(answer.status, 200u) << answer.body;
  EXPECT_EQ(str(parse(answer.body).as_object(), "outcome"), "cancelled") << answer.body;
  // Control: the host still serves its other sandboxes.
  EXPECT_EQ(exec({{"argv", {"true"}}})["exit_code"], 0);
}

TEST_F(ExecTest, StreamedEventsComeInOrder) {
  HttpReply r = post("/exec", {{"argv", {"sh", "-c", "echo one; echo two >&2; printf 'x\\303'; printf '\\251'; exit 4"}},
                               {"stream", true}});
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.header("Content-Type"), "text/event-stream");
  auto events = sse_events(r.body);
  ASSERT_FALSE(events.empty()) << r.body;
  EXPECT_EQ(events.back().first, "exit");
  EXPECT_EQ(events.back().second["exit_code"], 4);
  std::string out, err;
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& [event, data] = events[i];
    if (event == "start") {
      EXPECT_EQ(i, 0u);
    }
    if (event == "stdout") out += str(data, "data");
    if (event == "stderr") err += str(data, "data");
    EXPECT_EQ(data.if_contains("data_b64"), nullptr) << "a UTF-8 sequence was split: " << r.body;
  }
  EXPECT_EQ(out, "one\nx\xc3\xa9");
  EXPECT_EQ(err, "two\n");
  HttpReply accept = f_->call("POST", HostFixture::path(id_, "/exec"), R"({"argv":["echo","hi"]})", "alice",
                              {{"Accept", "text/event-stream"}});
  EXPECT_NE(accept.body.find("event: exit"), std::string::npos) << accept.body;
}

TEST_F(ExecTest, BadBodiesNameTheirField) {
  struct Case {
    json::value body;
    std::string field;
  };
  std::vector<Case> cases{
      {{{"argv", {"true"}}, {"timeot_ms", 5}}, "timeot_ms"},
      {{{"argv", "true"}}, "argv"},
      {{{"argv", json::array{}}}, "argv"},
      {{{"argv", {"true"}}, {"command", "true"}}, "command"},
      {json::object{}, "argv"},
      {{{"argv", {"true"}}, {"timeout_ms", -1}}, "timeout_ms"},
      {{{"argv", {"true"}}, {"timeout_ms", "5s"}}, "timeout_ms"},
      {{{"argv", {"true"}}, {"max_output", "65MiB"}}, "max_output"},
      {{{"argv", {"true"}}, {"cwd", "../etc"}}, "cwd"},
      {{{"argv", {"true"}}, {"env", {{"A=B", "c"}}}}, "env.A=B"},
      {{{"argv", {"true"}}, {"env", {{"A", 1}}}}, "env.A"},
      {{{"argv", {"true"}}, {"session", "bad id!"}}, "session"},
      {{{"argv", {"true"}}, {"stdin", "a"}, {"stdin_b64", "YQ=="}}, "stdin_b64"},
      {{{"argv", {"true"}}, {"stdin_b64", "!!"}}, "stdin_b64"},
  };
  for (const auto& c : cases) {
    HttpReply r = post("/exec", c.body);
    EXPECT_EQ(r.status, 400u) << json::serialize(c.body) << " -> " << r.body;
    auto v = parse(r.body);
    ASSERT_TRUE(v.is_object()) << r.body;
    EXPECT_EQ(v.at("code"), "bad_request");
    EXPECT_EQ(v.as_object().if_contains("field") ? std::string(v.at("field").as_string()) : "", c.field)
        << json::serialize(c.body) << " -> " << r.body;
  }
  HttpReply typo = post("/exec", {{"argv", {"true"}}, {"timeot_ms", 5}});
  EXPECT_NE(typo.body.find("did you mean \\\"timeout_ms\\\""), std::string::npos) << typo.body;
  HttpReply not_json = f_->call("POST", HostFixture::path(id_, "/exec"), "{");
  EXPECT_EQ(not_json.status, 400u);
  HttpReply no_session = post("/exec", {{"argv", {"true"}}, {"session", "nope"}});
  EXPECT_EQ(no_session.status, 404u);
  EXPECT_EQ(parse(no_session.body).at("field"), "session");
}

TEST_F(ExecTest, OnlyItsOwnerWithTheKeyReachesASandbox) {
  std::string body = R"({"argv":["true"]})";
  EXPECT_EQ(f_->call("POST", HostFixture::path(id_, "/exec"), body, "alice").status, 200u);  // control
  EXPECT_EQ(f_->call("POST", HostFixture::path(id_, "/exec"), body, "*").status, 200u);      // admin
  HttpReply other = f_->call("POST", HostFixture::path(id_, "/exec"), body, "mallory");
  EXPECT_EQ(other.status, 404u);
  EXPECT_EQ(parse(other.body).at("code"), "sandbox_not_found");
  HttpReply missing = f_->call("POST", HostFixture::path(HostFixture::new_id(), "/exec"), body, "alice");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(parse(missing.body).at("code"), "sandbox_not_found");  // the same answer either way
  HttpReply no_owner = f_->call("POST", HostFixture::path(id_, "/exec"), body, "");
  EXPECT_EQ(no_owner.status, 404u);
  HttpReply no_key = f_->call("POST", HostFixture::path(id_, "/exec"), body, "alice", {{"Authorization", ""}});
  EXPECT_EQ(no_key.status, 401u);
  EXPECT_EQ(parse(no_key.body).at("code"), "unauthorized");
}

}  // namespace
}  // namespace boxcar::sandboxes
