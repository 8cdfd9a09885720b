#include "client/sandbox_client.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace boxcar::client {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

TEST(SandboxClientBodies, ExecTakesArgvOrAShellCommandWithItsOptions) {
  ExecOptions o;
  o.cwd = "app";
  o.env = {{"K", "V"}, {"DROP", std::nullopt}};
  o.session = "s1";
  o.stdin_data = "in";
  o.timeout = 30s;
  json::object argv = exec_body(Command::of_argv({"python3", "-c", "print(1)"}), o);
  EXPECT_EQ(json::serialize(argv),
            R"js({"argv":["python3","-c","print(1)"],"cwd":"app","env":{"DROP":null,"K":"V"},)js"
            R"js("session":"s1","stdin":"in","timeout_ms":30000})js");
  json::object shell = exec_body(Command::of_shell("make | tail"), {});
  EXPECT_EQ(json::serialize(shell), R"js({"command":"make | tail"})js");
}

TEST(SandboxClientBodies, CreateSendsOnlyWhatWasGiven) {
  EXPECT_EQ(json::serialize(create_body({})), "{}");
  CreateOptions o;
  o.name = "user-1";
  o.reuse = true;
  o.memory = "512MiB";
  o.cpus = 0.5;
  o.pids = 64;
  o.ttl = 24h;
  o.labels = {{"team", "a"}};
  o.network = "none";
  EXPECT_EQ(json::serialize(create_body(o)),
            R"js({"name":"user-1","reuse":true,"resources":{"memory":"512MiB","cpus":5E-1,"pids":64},"ttl_ms":86400000,)js"
            R"js("labels":{"team":"a"},"network":"none"})js");
}

TEST(SandboxClientPaths, IdsAndFilePathsAreEncoded) {
  EXPECT_EQ(sandbox_path("abcdefgh2345"), "/api/v1/sandboxes/abcdefgh2345");
  // An id from a user cannot reach another route.
  EXPECT_EQ(sandbox_path("../agents"), "/api/v1/sandboxes/..%2Fagents");
  EXPECT_EQ(encode_file_path("/workspace/a b.py"), "workspace/a%20b.py");
  EXPECT_EQ(encode_file_path("src/x?.c"), "workspace/src/x%3F.c");
  EXPECT_EQ(encode_file_path("/tmp/%2e%2e"), "tmp/%252e%252e");
}

TEST(SandboxTypes, ExitCodesPassThrough) {
  ExecResult r;
  r.outcome = "ok";
  r.exit_code = 0;
  EXPECT_EQ(exit_code_of(r), 0);
  r.outcome = "failed";
  r.exit_code = 7;
  EXPECT_EQ(exit_code_of(r), 7);
  r.outcome = "timeout";
  EXPECT_EQ(exit_code_of(r), 124);
  r.outcome = "signaled";
  r.exit_code.reset();
  r.signal = 15;
  EXPECT_EQ(exit_code_of(r), 143);
  r.outcome = "oom";
  EXPECT_EQ(exit_code_of(r), 137);
  r.outcome = "setup_error";
  EXPECT_EQ(exit_code_of(r), 3);
}

TEST(SandboxTypes, OutputEventsDecodeBase64AndRefuseGarbage) {
  auto text = output_event_from_json("stdout", "12", R"js({"data":"hi\n"})js");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->data, "hi\n");
  EXPECT_EQ(text->id, "12");
  auto bytes = output_event_from_json("stdout", "", R"js({"data_b64":"/wA="})js");
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->data, std::string("\xff\x00", 2));
  EXPECT_FALSE(output_event_from_json("stdout", "", R"js({"data_b64":"!!"})js").ok());
  EXPECT_FALSE(output_event_from_json("stdout", "", "not json").ok());
}

TEST(SandboxTypes, AnExecAnswerIsRead) {
  auto r = exec_result_from_json(json::parse(
      R"js({"outcome":"ok","exit_code":0,"signal":null,"stdout":"42\n","stderr":"",)js"
      R"js("stdout_truncated":false,"stderr_truncated":true,"duration_ms":2.4,"pid":31})js"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_text, "42\n");
  EXPECT_TRUE(r->stderr_truncated);
  EXPECT_FALSE(r->signal.has_value());
  EXPECT_EQ(r->pid, 31);
  auto signaled = exec_result_from_json(json::parse(R"js({"outcome":"signaled","exit_code":null,"signal":"SIGTERM"})js"));
  ASSERT_TRUE(signaled.ok());
  EXPECT_EQ(signaled->signal, 15);
  EXPECT_EQ(exit_code_of(*signaled), 143);
  EXPECT_FALSE(exec_result_from_json(json::parse("[1]")).ok());
  EXPECT_FALSE(sandbox_info_from_json(json::parse(R"js({"name":"x"})js")).ok());
}

}  // namespace
}  // namespace boxcar::client
