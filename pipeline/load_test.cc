#include "pipeline/load.h"

#include <gtest/gtest.h>

namespace boxcar::pipeline {
namespace {

std::vector<std::string> errors_of(std::string_view text) {
  std::vector<std::string> out;
  for (const Diagnostic& d : parse_pipeline(text, "f.toml").errors) out.push_back(d.to_string());
  return out;
}

Pipeline load_ok(std::string_view text) {
  LoadResult r = parse_pipeline(text, "f.toml");
  EXPECT_TRUE(r.errors.empty()) << render_diagnostics(r.errors, text);
  return r.pipeline.value_or(Pipeline{});
}

TEST(LoadTest, MinimalStepGetsDocumentedDefaults) {
  Pipeline p = load_ok("version = 1\n[[step]]\nname = \"a\"\nrun = \"true\"\n");
  ASSERT_EQ(p.steps.size(), 1u);
  const Step& s = p.steps[0];
  EXPECT_EQ(s.name, "a");
  EXPECT_EQ(s.image, "host");
  EXPECT_TRUE(s.shell.empty());  // the engine picks: bash -eo pipefail where the root has bash
  EXPECT_EQ(s.workdir, ".");
  EXPECT_EQ(s.timeout, Millis(3'600'000));
  EXPECT_EQ(s.network, Network::job);
  EXPECT_FALSE(s.when.has_value());
  EXPECT_EQ(s.pos.line, 2);
  EXPECT_FALSE(p.on.declared);
}

TEST(LoadTest, EnvLayersPipelineThenDefaultsThenStep) {
  Pipeline p = load_ok(R"(version = 1
[env]
A = "pipeline"
B = "pipeline"
C = "pipeline"
[defaults]
env = { B = "defaults", C = "defaults" }
[[step]]
name = "s"
run = "true"
env = { C = "step" }
[[step]]
name = "t"
run = "true"
)");
  ASSERT_EQ(p.steps.size(), 2u);
  EXPECT_EQ(p.env.at("A"), "pipeline");
  EXPECT_EQ(p.steps[0].env, (EnvMap{{"A", "pipeline"}, {"B", "defaults"}, {"C", "step"}}));
  EXPECT_EQ(p.steps[1].env, (EnvMap{{"A", "pipeline"}, {"B", "defaults"}, {"C", "defaults"}}));
}

TEST(LoadTest, DefaultsApplyAndResourcesMergePerKey) {
  Pipeline p = load_ok(R"(version = 1
[defaults]
image = "debian:12"
timeout = "15m"
retry = 2
resources = { memory = "1GiB", cpus = 2 }
[[step]]
name = "s"
run = "true"
timeout = "90s"
resources = { cpus = 0.5, pids = 64 }
)");
  const Step& s = p.steps.at(0);
  EXPECT_EQ(s.image, "debian:12");
  EXPECT_EQ(s.timeout, Millis(90'000));
  EXPECT_EQ(s.retry, 2);
  EXPECT_EQ(s.resources.memory, uint64_t{1} << 30);
  EXPECT_EQ(s.resources.cpus, 0.5);
  EXPECT_EQ(s.resources.pids, 64u);
  EXPECT_FALSE(s.resources.tmp.has_value());
}

TEST(LoadTest, DurationsAndSizesAreParsedIntoValues) {
  Pipeline p = load_ok(R"(version = 1
[[step]]
name = "s"
run = "true"
timeout = "1h30m"
grace = "250ms"
preview_ttl = "2h"
resources = { memory = "512MiB", tmp = "100MB" }
)");
  const Step& s = p.steps.at(0);
  EXPECT_EQ(s.timeout, Millis(5'400'000));
  EXPECT_EQ(s.grace, Millis(250));
  EXPECT_EQ(s.preview_ttl, Millis(7'200'000));
  EXPECT_EQ(s.resources.memory, uint64_t{512} << 20);
  EXPECT_EQ(s.resources.tmp, 100'000'000u);
}

TEST(LoadTest, WhenServicesExposeAndTriggers) {
  Pipeline p = load_ok(R"(version = 1
[on]
push = { branches = ["main"], tags = ["v*"] }
[[step]]
name = "web"
image = "nginx:1"
when = { branch = "main", event = ["push", "manual"], status = "always" }
[[step.service]]
name = "db"
run = "pg_ctl start"
ready = { tcp = 5432, timeout = "5s" }
[[step.expose]]
port = 8080
[[step.expose]]
port = 9090
name = "admin"
ready = { http = "/health" }
)");
  EXPECT_TRUE(p.on.declared);
  ASSERT_TRUE(p.on.push.has_value());
  EXPECT_EQ(p.on.push->tags, std::vector<std::string>{"v*"});
  EXPECT_FALSE(p.on.pull_request.has_value());
  const Step& s = p.steps.at(0);
  EXPECT_TRUE(s.run.empty());  // an image's entrypoint
  ASSERT_TRUE(s.when.has_value());
  EXPECT_EQ(s.when->branch, std::vector<std::string>{"main"});
  EXPECT_EQ(s.when->event, (std::vector<std::string>{"push", "manual"}));
  EXPECT_EQ(s.when->status, WhenStatus::always);
  ASSERT_EQ(s.services.size(), 1u);
  EXPECT_EQ(s.services[0].ready->tcp, 5432);
  EXPECT_EQ(s.services[0].ready->timeout, Millis(5000));
  ASSERT_EQ(s.expose.size(), 2u);
  EXPECT_EQ(s.expose[0].name, "web");
  EXPECT_EQ(s.expose[0].ready.tcp, 8080);
  EXPECT_EQ(s.expose[1].name, "admin");
  EXPECT_EQ(s.expose[1].ready.http, "/health");
  EXPECT_FALSE(s.expose[1].ready.tcp.has_value());
}

TEST(LoadTest, EveryErrorIsReportedInFileOrder) {
  auto errors = errors_of(R"(version = 1
[[step]]
name = "a"
run = "true"
retry = 11
[[step]]
name = "b"
run = "true"
neds = ["a"]
timeout = "soon"
)");
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], "f.toml:5:9: error: step \"a\": \"retry\" must be between 0 and 10, not 11");
  EXPECT_EQ(errors[1],
            "f.toml:9:1: error: step \"b\": unknown key \"neds\" (did you mean \"needs\"?)");
  EXPECT_EQ(errors[2],
            "f.toml:10:11: error: step \"b\": \"timeout\" must be a duration like \"90s\", "
            "\"10m\" or \"1h30m\", not \"soon\"");
}

TEST(LoadTest, CancelSupersededDefaultsTrueAndAloneKeepsEveryPush) {
  EXPECT_TRUE(load_ok("version = 1\n[[step]]\nname = \"a\"\nrun = \"true\"\n").on.cancel_superseded);
  Pipeline p = load_ok("version = 1\n[on]\ncancel_superseded = false\n"
                       "[[step]]\nname = \"a\"\nrun = \"true\"\n");
  EXPECT_FALSE(p.on.cancel_superseded);
  EXPECT_FALSE(p.on.declared);  // no push or pull_request filter: every push still starts it
  p = load_ok("version = 1\n[on]\npush = {}\ncancel_superseded = true\n"
              "[[step]]\nname = \"a\"\nrun = \"true\"\n");
  EXPECT_TRUE(p.on.declared);
  EXPECT_TRUE(p.on.cancel_superseded);
}

TEST(LoadTest, DidYouMeanAtEveryLevel) {
  auto errors = errors_of(R"(verison = 1
[defaults]
imgae = "host"
[on]
push = { branch = ["main"] }
[[step]]
name = "a"
run = "true"
resources = { memroy = "1G" }
when = { stauts = "always" }
)");
  ASSERT_EQ(errors.size(), 6u);
  EXPECT_EQ(errors[0],
            "f.toml:1:1: error: unknown top-level key \"verison\" (did you mean \"version\"?)");
  EXPECT_EQ(errors[1], "f.toml:1:1: error: missing required key \"version\" (add version = 1)");
  EXPECT_EQ(errors[2],
            "f.toml:3:1: error: [defaults]: unknown key \"imgae\" (did you mean \"image\"?)");
  EXPECT_EQ(errors[3],
            "f.toml:5:10: error: [on] push: unknown key \"branch\" (did you mean \"branches\"?)");
  EXPECT_EQ(errors[4], "f.toml:9:15: error: step \"a\": resources: unknown key \"memroy\" "
                       "(did you mean \"memory\"?)");
  EXPECT_EQ(errors[5], "f.toml:10:10: error: step \"a\": when: unknown key \"stauts\" "
                       "(did you mean \"status\"?)");
}

TEST(LoadTest, UnknownNeedSuggestsAStep) {
  auto errors = errors_of(R"(version = 1
[[step]]
name = "build"
run = "make"
[[step]]
name = "test"
run = "make test"
needs = ["biuld"]
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "f.toml:8:10: error: step \"test\": needs unknown step \"biuld\" "
                       "(did you mean \"build\"?)");
}

TEST(LoadTest, CycleIsReportedOnceWithItsPath) {
  auto errors = errors_of(R"(version = 1
[[step]]
name = "z"
run = "true"
needs = ["a"]
[[step]]
name = "a"
run = "true"
needs = ["b"]
[[step]]
name = "b"
run = "true"
needs = ["c"]
[[step]]
name = "c"
run = "true"
needs = ["a"]
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "f.toml:6:1: error: cycle in needs: a -> b -> c -> a");
}

TEST(LoadTest, TwoSeparateCyclesGiveTwoErrors) {
  auto errors = errors_of(R"(version = 1
[[step]]
name = "a"
run = "true"
needs = ["b"]
[[step]]
name = "b"
run = "true"
needs = ["a"]
[[step]]
name = "c"
run = "true"
needs = ["d"]
[[step]]
name = "d"
run = "true"
needs = ["c"]
)");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "f.toml:2:1: error: cycle in needs: a -> b -> a");
  EXPECT_EQ(errors[1], "f.toml:10:1: error: cycle in needs: c -> d -> c");
}

TEST(LoadTest, TomlSyntaxErrorIsOneDiagnostic) {
  auto errors = errors_of("version = 1\n[[step]]\nname = \"a\nrun = \"x\"\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("f.toml:3:", 0), 0u) << errors[0];
}

TEST(LoadTest, DefaultsRefuseStepOnlyKeys) {
  auto errors = errors_of("version = 1\n[defaults]\nneeds = []\nmatrix = { a = [1] }\n");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "f.toml:3:1: error: [defaults]: \"needs\" cannot have a default");
  EXPECT_EQ(errors[1], "f.toml:4:1: error: [defaults]: \"matrix\" cannot have a default");
}

TEST(LoadTest, RenderShowsTheLineAndACaret) {
  std::string text = "version = 1\n[[step]]\nname = \"a\"\nrun = \"true\"\nretry = \"x\"\n";
  LoadResult r = parse_pipeline(text, "f.toml");
  EXPECT_EQ(render_diagnostics(r.errors, text),
            "f.toml:5:9: error: step \"a\": \"retry\" must be an integer, not a string\n"
            "retry = \"x\"\n"
            "        ^\n");
}

TEST(LoadTest, DiagnosticWithoutPositionLeavesItOut) {
  EXPECT_EQ((Diagnostic{"f.toml", {}, "boom"}).to_string(), "f.toml: error: boom");
}

TEST(LoadTest, ServiceFromAnImage) {
  Pipeline p = load_ok(R"(version = 1
[[step]]
name = "test"
image = "node:20"
run = "npm test"
[[step.service]]
name = "db"
image = "postgres:16"
env = { POSTGRES_PASSWORD = "pw" }
command = ["postgres", "-c", "fsync=off"]
ready = { tcp = 5432 }
[[step.service]]
name = "cache"
image = "redis:7"
run = "redis-server --save ''"
)");
  const Step& s = p.steps.at(0);
  ASSERT_EQ(s.services.size(), 2u);
  EXPECT_EQ(s.services[0].image, "postgres:16");
  EXPECT_TRUE(s.services[0].run.empty());
  EXPECT_EQ(s.services[0].command, (std::vector<std::string>{"postgres", "-c", "fsync=off"}));
  EXPECT_EQ(s.services[0].env.at("POSTGRES_PASSWORD"), "pw");
  EXPECT_EQ(s.services[1].run, "redis-server --save ''");
}

TEST(LoadTest, ServiceImageMistakesAreExplained) {
  auto errors = errors_of(R"(version = 1
[[step]]
name = "a"
run = "true"
[[step.service]]
name = "db"
run = "x"
image = "postgres:16"
command = ["postgres"]
[[step.service]]
name = "web"
image = "host"
[[step.service]]
name = "nothing"
)");
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0],
            "f.toml:9:11: error: step \"a\": service \"db\": \"command\" replaces an image's Cmd: it "
            "needs \"image\" and no \"run\"");
  EXPECT_NE(errors[1].find("service \"web\": \"image\" must be an image reference"), std::string::npos)
      << errors[1];
  EXPECT_NE(errors[2].find("service \"nothing\": missing required key \"run\""), std::string::npos) << errors[2];
}

}  // namespace
}  // namespace boxcar::pipeline
