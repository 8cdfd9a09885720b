// Sessions: cd and export persist in the shell form, a killed command leaves the session as it
// was, the trailer never reaches the client, and the routes' bad input.
#include <boost/json.hpp>

#include "sandboxes/sandbox_suite.h"

namespace boxcar::sandboxes {
namespace {

namespace json = boost::json;

class SessionsTest : public SandboxSuite {};

TEST_F(SessionsTest, CdAndExportPersistInTheSession) {
  HttpReply made = post("/sessions", {{"id", "persist"}});
  ASSERT_EQ(made.status, 201u) << made.body;
  auto first = exec({{"command", "mkdir -p /tmp/s1 && cd /tmp/s1 && export GREETING=hi && echo done"},
                     {"session", "persist"}});
  EXPECT_EQ(str(first, "stdout"), "done\n");
  EXPECT_EQ(str(first, "stderr"), "") << "the trailer leaked: " << first;
  auto second = exec({{"command", "echo $GREETING; pwd"}, {"session", "persist"}});
  EXPECT_EQ(str(second, "stdout"), "hi\n/tmp/s1\n");
  auto other = exec({{"command", "echo [$GREETING]; pwd"}, {"session", "default"}});
  EXPECT_EQ(str(other, "stdout"), "[]\n/workspace\n");  // control: another session
  auto got = parse(get("/sessions/persist").body);
  EXPECT_EQ(got.at("cwd"), "/tmp/s1");
  EXPECT_EQ(got.at("env").at("GREETING"), "hi");
  auto unset = exec({{"command", "unset GREETING"}, {"session", "persist"}});
  EXPECT_EQ(str(exec({{"command", "echo [$GREETING]"}, {"session", "persist"}}), "stdout"), "[]\n");
}

TEST_F(SessionsTest, ARequestsOwnEnvDoesNotStickAndExitCodesSurviveTheTrailer) {
  ASSERT_EQ(post("/sessions", {{"id", "once"}}).status, 201u);
  auto r = exec({{"command", "echo $ONLY_NOW; exit 7"}, {"session", "once"}, {"env", {{"ONLY_NOW", "x"}}}});
  EXPECT_EQ(str(r, "stdout"), "x\n");
  EXPECT_EQ(r["exit_code"], 7);
  EXPECT_EQ(str(exec({{"command", "echo [$ONLY_NOW]"}, {"session", "once"}}), "stdout"), "[]\n");
}

TEST_F(SessionsTest, AForgedMarkerReachesOnlyItsOwnSession) {
  ASSERT_EQ(post("/sessions", {{"id", "victim"}, {"cwd", "/tmp"}}).status, 201u);
  ASSERT_EQ(post("/sessions", {{"id", "forger"}}).status, 201u);
  // The forger reads its own marker from its command line and prints a fake state after it.
  auto r = exec({{"command", "m=$(tr '\\0' '\\n' < /proc/$$/cmdline | grep -o '@boxcar-session-[0-9a-f]*@' | head -1);"
                             " printf '\\n%s/etc\\n' \"$m\" >&2; true"},
                 {"session", "forger"}});
  EXPECT_EQ(str(r, "outcome"), "ok") << r;
  EXPECT_EQ(parse(get("/sessions/victim").body).at("cwd"), "/tmp");
}

TEST_F(SessionsTest, AKilledCommandLeavesTheSessionUnchanged) {
  if (!has_exec_control()) GTEST_SKIP() << "timeouts of one command need the executor's ExecControl";
  ASSERT_EQ(post("/sessions", {{"id", "killed"}}).status, 201u);
  auto r = exec({{"command", "cd /tmp; export GONE=1; sleep 30"}, {"session", "killed"}, {"timeout_ms", 200},
                 {"grace_ms", 0}});
  EXPECT_EQ(str(r, "outcome"), "timeout");
  auto s = parse(get("/sessions/killed").body);
  EXPECT_EQ(s.at("cwd"), "/workspace");
  EXPECT_EQ(s.at("env").as_object().if_contains("GONE"), nullptr);
}

TEST_F(SessionsTest, PatchAndDelete) {
  ASSERT_EQ(post("/sessions", {{"id", "patched"}}).status, 201u);
  HttpReply p = f_->call_json("PATCH", HostFixture::path(id_, "/sessions/patched"),
                              {{"env", {{"K", "v"}, {"HOME", nullptr}}}, {"cwd", "/tmp"}});
  ASSERT_EQ(p.status, 200u) << p.body;
  EXPECT_EQ(str(exec({{"command", "echo $K [$HOME]; pwd"}, {"session", "patched"}}), "stdout"), "v []\n/tmp\n");
  EXPECT_EQ(f_->call("DELETE", HostFixture::path(id_, "/sessions/patched")).status, 204u);
  EXPECT_EQ(get("/sessions/patched").status, 404u);
  HttpReply def = f_->call("DELETE", HostFixture::path(id_, "/sessions/default"));
  EXPECT_EQ(def.status, 409u);
  auto list = parse(get("/sessions").body);
  EXPECT_FALSE(list.at("sessions").as_array().empty());
}

TEST_F(SessionsTest, BadInput) {
  EXPECT_EQ(post("/sessions", {{"id", "dup"}}).status, 201u);
  HttpReply dup = post("/sessions", {{"id", "dup"}});
  EXPECT_EQ(dup.status, 409u);
  EXPECT_EQ(parse(dup.body).at("code"), "exists");
  HttpReply bad_id = post("/sessions", {{"id", "no spaces"}});
  EXPECT_EQ(bad_id.status, 400u);
  EXPECT_EQ(parse(bad_id.body).at("field"), "id");
  HttpReply typo = post("/sessions", {{"cdw", "/tmp"}});
  EXPECT_EQ(typo.status, 400u);
  EXPECT_EQ(parse(typo.body).at("field"), "cdw");
  HttpReply rel = post("/sessions", {{"cwd", "tmp"}});
  EXPECT_EQ(rel.status, 400u);
  EXPECT_EQ(parse(rel.body).at("field"), "cwd");
  HttpReply env = f_->call_json("PATCH", HostFixture::path(id_, "/sessions/default"), {{"env", {{"A", 3}}}});
  EXPECT_EQ(env.status, 400u);
  EXPECT_EQ(parse(env.body).at("field"), "env.A");
  EXPECT_EQ(get("/sessions/none").status, 404u);
  HttpReply other = f_->call("GET", HostFixture::path(id_, "/sessions"), "", "mallory");
  EXPECT_EQ(other.status, 404u);
}

}  // namespace
}  // namespace boxcar::sandboxes
