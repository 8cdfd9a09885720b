// Bad input gets exit 2 and a message that says what, where and how to fix it.
#include <gtest/gtest.h>

#include "tests/cli/boxcar_process.h"

namespace boxcar::testing {
namespace {

TEST(ValidateTest, ValidPipeline) {
  TempDir dir;
  dir.write(".boxcar.toml", "version = 1\n[[step]]\nname = \"a\"\nrun = \"true\"\n");
  auto r = run_boxcar({"validate"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ok"), std::string::npos);
}

TEST(ValidateTest, InvalidPipelinePointsAtTheLine) {
  TempDir dir;
  dir.write(".boxcar.toml", "version = 1\n[[step]]\nname = \"test\"\nrun = \"true\"\nneds = []\n");
  auto r = run_boxcar({"validate"}, dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(".boxcar.toml:5:1: error: step \"test\": unknown key \"neds\" (did you mean \"needs\"?)"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("neds = []"), std::string::npos) << "shows the offending line";
  EXPECT_NE(r.err.find("^"), std::string::npos) << "and a caret";
  // run refuses the same file the same way, before running anything.
  EXPECT_EQ(run_boxcar({"run"}, dir.path()).exit_code, 2);
}

// A matrix value carries a ".." into workdir: validate fails on that expansion, as run would,
// and the sound expansion is not reported. Control: the same file with sound values is valid.
TEST(ValidateTest, EveryMatrixExpansionsWorkdirAndImageAreChecked) {
  TempDir dir;
  const std::string head = "version = 1\n[[step]]\nname = \"build\"\nrun = \"true\"\n"
                           "workdir = \"out/${matrix.cc}\"\nimage = \"${matrix.img}\"\n";
  dir.write(".boxcar.toml", head + "matrix = { cc = [\"gcc\", \"../../etc\"], img = [\"Debian:12\"] }\n");
  auto r = run_boxcar({"validate"}, dir.path());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.err.find(".boxcar.toml:5:11: error: step \"build\": expansion \"build (cc=../../etc, img=Debian:12)\": "
                       "\"workdir\" must stay inside the workspace (no \"..\"), not \"out/../../etc\""),
            std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("workdir\" must stay inside the workspace (no \"..\"), not \"out/gcc"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(".boxcar.toml:6:9: error: step \"build\": expansion \"build (cc=gcc, img=Debian:12)\": image"),
            std::string::npos) << r.err;
  EXPECT_EQ(run_boxcar({"run"}, dir.path()).exit_code, 2) << "run refuses it the same way";

  dir.write(".boxcar.toml", head + "matrix = { cc = [\"gcc\", \"clang\"], img = [\"debian:12\"] }\n");
  auto ok = run_boxcar({"validate"}, dir.path());
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

// Files that overflowed the parser's stack or asked for gigabytes: exit 2 with the limit
// named at file:line:col, within a small fraction of that memory.
TEST(ValidateTest, HostileFilesAreRefusedNotCrashedOn) {
  std::string amplified = "version = 1\n[defaults]\nenv = { BIG = \"" + repeat("x", 200'000) + "\" }\n";
  for (int i = 0; i < 100; ++i) {
    amplified += "[[step]]\nname = \"s" + std::to_string(i) + "\"\nrun = \"true\"\nmatrix = { a = [" +
                 repeat("\"x\",", 15) + "\"y\"], b = [" + repeat("\"p\",", 15) + "\"q\"] }\n";
  }
  struct Case {
    std::string text, expect;
  };
  for (const auto& c : std::vector<Case>{
           {"version = 1\n" + repeat("a.", 60'000) + "b = 1\n",
            ".boxcar.toml:2:1: error: tables, arrays and dotted keys nest deeper than 32 levels"},
           {"version = 1\nx = " + repeat("[", 120'000) + "\n", ".boxcar.toml:2:37: error: tables"},
           {"version = 1\nx = " + repeat("{a=", 40'000) + "\n", "nest deeper than 32 levels"},
           {amplified, ".boxcar.toml:3:15: error: env \"BIG\": BIG=value is 200004 bytes, over the limit of 131071"},
           {"version = 1\n# " + repeat("x", 2 << 20) + "\n",
            ".boxcar.toml:2:1048565: error: the file is larger than 1.0 MiB"},
       }) {
    TempDir dir;
    dir.write(".boxcar.toml", c.text);
    auto r = run_boxcar({"validate"}, dir.path());
    EXPECT_EQ(r.exit_code, 2) << r.err.substr(0, 2000);
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err.substr(0, 2000);
    EXPECT_LT(r.max_rss_kib, 200 * 1024) << "peak memory of validate";
    EXPECT_EQ(run_boxcar({"run"}, dir.path()).exit_code, 2) << "run refuses it the same way";
  }
}

TEST(ValidateTest, MissingFileIsOneLine) {
  TempDir dir;
  auto r = run_boxcar({"validate"}, dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no pipeline file"), std::string::npos);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  auto r2 = run_boxcar({"validate", "--file", "nope.toml"}, dir.path());
  EXPECT_EQ(r2.exit_code, 2);
  EXPECT_EQ(std::count(r2.err.begin(), r2.err.end(), '\n'), 1) << r2.err;
}

TEST(ValidateTest, UsageErrorsExit2WithOneLine) {
  TempDir dir;
  dir.write(".boxcar.toml", "version = 1\n[[step]]\nname = \"a\"\nrun = \"true\"\n");
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  for (const auto& c : std::vector<Case>{
           {{"run", "--fiel", "x"}, "unknown flag --fiel (did you mean --file?)"},
           {{"run", "--secret", "NOEQUALS"}, "--secret must be NAME=VALUE"},
           {{"run", "--secret", "1BAD=x"}, "--secret must be NAME=VALUE"},
           {{"run", "--jobs", "zero"}, "--jobs must be a number"},
           {{"run", "--executor", "hots"}, "did you mean \"host\"?"},
           {{"plan", "--format", "yaml"}, "--format must be text, json or dot"},
           {{"rnu"}, "did you mean \"run\"?"},
           {{"serve", "--max-pipeline-steps", "zero"},
            "--max-pipeline-steps must be a number from 1 to 1000000, not \"zero\""},
           {{"serve", "--max-pipeline-bytes", "1"}, "--max-pipeline-bytes must be a size from 1KiB"},
           {{"agent", "--server", "http://127.0.0.1:9", "--token", "t", "--max-pipeline-depth", "-1"},
            "--max-pipeline-depth must be a number from 1 to 1000000"},
           {{"agent", "--server", "http://127.0.0.1:9", "--token", "t", "--max-pipeline-file", "1TiB"},
            "--max-pipeline-file must be a size from 1KiB to 64.0 MiB"},
       }) {
    auto r = run_boxcar(c.args, dir.path());
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << " " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
  }
}

// A declared secret without a value fails its step before the script runs, saying how to give
// it; a step that needs no secret still runs (control).
TEST(ValidateTest, MissingSecretFailsItsStepBeforeItRuns) {
  TempDir dir;
  dir.write(".boxcar.toml",
            "version = 1\n[[step]]\nname = \"a\"\nsecrets = [\"NPM_TOKEN\"]\nrun = \"echo a-ran\"\n"
            "[[step]]\nname = \"b\"\nrun = \"echo b-ran\"\n");
  auto r = run_boxcar({"run"}, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("--secret NPM_TOKEN=VALUE"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("a-ran"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("b-ran"), std::string::npos) << r.out;
}

TEST(PlanTest, FormatsTextJsonDot) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "build"
matrix = { cc = ["gcc", "clang"] }
run = "true"
[[step]]
name = "ship"
needs = ["build"]
run = "true"
)");
  auto text = run_boxcar({"plan"}, dir.path());
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("build (cc=gcc)"), std::string::npos) << text.out;
  // What each step's /workspace shows, lowest first: the later expansion above the earlier.
  EXPECT_NE(text.out.find("workspace: checkout < build (cc=gcc) < build (cc=clang) < ship\n"), std::string::npos)
      << text.out;
  auto json = run_boxcar({"plan", "--format", "json"}, dir.path());
  ASSERT_EQ(json.exit_code, 0);
  auto doc = boost::json::parse(json.out).as_object();
  auto& steps = doc.at("steps").as_array();
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[2].at("needs").as_array().size(), 2u);
  EXPECT_EQ(steps[2].at("stage").as_int64(), 2);
  auto dot = run_boxcar({"plan", "--format", "dot"}, dir.path());
  EXPECT_NE(dot.out.find("\"build (cc=clang)\" -> \"ship\""), std::string::npos) << dot.out;
}

}  // namespace
}  // namespace boxcar::testing
