// Every example under examples/ is run by the real binary and its outcome checked.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/cli/boxcar_process.h"

namespace boxcar::testing {
namespace {

namespace fs = std::filesystem;

// Copies examples/<name> into a fresh workspace so runs never write into the source tree.
fs::path copy_example(const TempDir& dir, const std::string& name) {
  fs::copy(fs::path(BOXCAR_SOURCE_DIR) / "examples" / name, dir.path(),
           fs::copy_options::recursive);
  return dir.path();
}

std::map<std::string, std::string> final_states(const ProcessResult& r) {
  std::map<std::string, std::string> states;
  for (const auto& e : r.events()) {
    if (e.at("event").as_string() == "step_finished") {
      states[std::string(e.at("step").as_string())] = std::string(e.at("status").as_string());
    }
  }
  return states;
}

// The examples run on each isolated executor: native (the default) and oci (runc).
class ExamplesOnExecutor : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (std::string why = executor_unavailable(GetParam()); !why.empty()) GTEST_SKIP() << why;
  }
};

TEST_P(ExamplesOnExecutor, HelloFansOutAndIn) {
  TempDir dir;
  auto ws = copy_example(dir, "hello");
  // The demo keeps its preview open after the pipeline: Ctrl-C then closes it, exit code 0.
  auto r = run_boxcar({"run", "--json", "--jobs", "4", "--executor", GetParam()}, ws, {}, "\"pipeline_finished\"");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto states = final_states(r);
  EXPECT_EQ(states.size(), 6u);
  for (const auto& [name, state] : states) EXPECT_EQ(state, "success") << name;
  // report starts only after lint, unit-tests and docs finished; those three start before any
  // of them finishes (they run in parallel).
  std::vector<std::string> order;
  for (const auto& e : r.events()) {
    std::string ev(e.at("event").as_string());
    if (ev == "step_started" || ev == "step_finished") {
      order.push_back(ev.substr(5) + ":" + std::string(e.at("step").as_string()));
    }
  }
  auto pos = [&](const std::string& s) {
    return std::find(order.begin(), order.end(), s) - order.begin();
  };
  for (const char* mid : {"lint", "unit-tests", "docs"}) {
    EXPECT_LT(pos(std::string("started:") + mid), pos("finished:lint"));
    EXPECT_LT(pos(std::string("started:") + mid), pos("finished:docs"));
    EXPECT_LT(pos(std::string("finished:") + mid), pos("started:report"));
  }
  EXPECT_NE(r.out.find("hello from boxcar"), std::string::npos);
  // The demo publishes an artifact and a preview.
  EXPECT_TRUE(fs::is_regular_file(latest_run(ws) / "artifacts" / "site" / "index.html"));
  bool preview = false;
  for (const auto& e : r.events()) {
    if (e.at("event").as_string() == "preview") {
      preview = true;
      EXPECT_NE(std::string(e.at("url").as_string()).find("http://8080-"), std::string::npos);
    }
  }
  EXPECT_TRUE(preview);
}

// Another `boxcar run` or any program on the well-known preview port (and the demo's own 8080)
// does not stop the demo: it takes a free port and says which.
TEST(ExamplesTest, TheDemoRunsWhileItsDefaultPortsAreTaken) {
  HeldPort previews(8470), web(8080);
  TempDir dir;
  auto ws = copy_example(dir, "hello");
  auto r = run_boxcar({"run", "--json", "--jobs", "2"}, ws, {}, "\"pipeline_finished\"");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  for (const auto& [name, state] : final_states(r)) EXPECT_EQ(state, "success") << name;
  EXPECT_NE(r.err.find("previews are served on 127.0.0.1:"), std::string::npos) << r.err;
  bool preview = false;
  for (const auto& e : r.events()) {
    if (e.at("event").as_string() != "preview") continue;
    preview = true;
    EXPECT_EQ(std::string(e.at("url").as_string()).find(":8470/"), std::string::npos) << e;
  }
  EXPECT_TRUE(preview);
}

// The control: an address the user chose that cannot be bound is an infrastructure error.
TEST(ExamplesTest, AnExplicitPreviewAddressThatIsTakenExits3) {
  HeldPort taken(0);
  std::string port = std::to_string(taken.port());
  TempDir dir;
  auto ws = copy_example(dir, "hello");
  auto r = run_boxcar({"run", "--json", "--preview-listen", "127.0.0.1:" + port}, ws);
  EXPECT_EQ(r.exit_code, 3) << r.err << r.out;
  EXPECT_NE(r.err.find(port), std::string::npos) << r.err;
}

TEST_P(ExamplesOnExecutor, MatrixExpandsEveryCombination) {
  TempDir dir;
  auto ws = copy_example(dir, "matrix");
  auto r = run_boxcar({"run", "--json", "--executor", GetParam()}, ws);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto states = final_states(r);
  for (const char* name : {"build (cc=clang, opt=O0)", "build (cc=clang, opt=O2)",
                           "build (cc=gcc, opt=O0)", "build (cc=gcc, opt=O2)", "package"}) {
    EXPECT_EQ(states[name], "success") << name;
  }
  EXPECT_NE(r.out.find("building with clang -O2"), std::string::npos);
}

TEST_P(ExamplesOnExecutor, FailureSkipsAndCleansUp) {
  TempDir dir;
  auto ws = copy_example(dir, "failure");
  auto r = run_boxcar({"run", "--json", "--executor", GetParam()}, ws);
  EXPECT_EQ(r.exit_code, 1) << r.err << r.out;
  auto states = final_states(r);
  EXPECT_EQ(states["flaky-lint"], "failed");
  EXPECT_EQ(states["test"], "failed");
  EXPECT_EQ(states["deploy"], "skipped");
  EXPECT_EQ(states["notify-failure"], "success");
  EXPECT_EQ(states["cleanup"], "success");
  EXPECT_EQ(r.out.find("deploying"), std::string::npos);
}

TEST_P(ExamplesOnExecutor, ArtifactsAreCopiedToTheRunDirectory) {
  TempDir dir;
  auto ws = copy_example(dir, "artifacts");
  auto r = run_boxcar({"run", "--json", "--executor", GetParam()}, ws);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  fs::path art = latest_run(ws) / "artifacts";
  EXPECT_TRUE(fs::is_regular_file(art / "out/bin/app"));
  EXPECT_TRUE(fs::is_regular_file(art / "reports/unit/results.xml"));
  EXPECT_TRUE(fs::is_regular_file(art / "reports/integration/results.xml"));
  EXPECT_FALSE(fs::exists(art / "reports/notes.txt"));
  int artifact_events = 0;
  for (const auto& e : r.events()) artifact_events += e.at("event").as_string() == "artifact";
  EXPECT_EQ(artifact_events, 3);
}

TEST_P(ExamplesOnExecutor, PreviewsServeAfterThePipelineUntilInterrupted) {
  TempDir dir;
  auto ws = copy_example(dir, "previews");
  // The second preview event, with its closing time, comes once the pipeline is over.
  auto r = run_boxcar({"run", "--json", "--preview-listen", "127.0.0.1:0", "--executor", GetParam()}, ws, {},
                      R"("until":")");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto states = final_states(r);
  EXPECT_EQ(states["web"], "success");
  EXPECT_EQ(states["smoke"], "success");
  EXPECT_NE(r.out.find("hello from a boxcar preview"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("preview: http://8471-"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Executors, ExamplesOnExecutor, ::testing::Values("native", "oci"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace boxcar::testing
