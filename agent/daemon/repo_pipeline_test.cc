// The pipeline parser's child process: real forks, real crashes, and the test process (the
// agent here) carries on after each.
#include "agent/daemon/repo_pipeline.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>

namespace boxcar::agent {
namespace {

namespace fs = std::filesystem;

std::string repeat(std::string_view s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

const std::string kValid = "version = 1\n[[step]]\nname = \"a\"\nrun = \"true\"\n";

// An array of 50,000 integers: a TOML tree of some megabytes.
std::string big_valid() { return "version = 1\nx = [" + repeat("1,", 50'000) + "1]\n"; }

TEST(ParseInChildTest, ValidAndInvalidFilesComeBackAsTheParserSaysThem) {
  auto ok = parse_in_child(kValid, "f.toml", {}, {});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  ASSERT_TRUE(ok->pipeline);
  EXPECT_EQ(ok->pipeline->steps.at(0).name, "a");

  auto bad = parse_in_child("version = 1\n[[step]]\nnme = \"a\"\n", "f.toml", {}, {});
  ASSERT_TRUE(bad.ok()) << bad.error().message;
  ASSERT_FALSE(bad->errors.empty());
  EXPECT_EQ(bad->errors[0].to_string().rfind("f.toml:2:1: error: step #1: missing required key", 0), 0u)
      << bad->errors[0].to_string();
}

// Without the depth limit, 200,000 dotted parts overflow any reasonable stack in the code
// that walks the tree: the child dies of it, the caller gets the reason.
TEST(ParseInChildTest, AStackOverflowKillsTheChildNotTheAgent) {
  pipeline::Limits unlimited;
  unlimited.depth = 1'000'000;
  ParserLimits small;
  small.stack_bytes = 1 << 20;
  std::string deep = "version = 1\n" + repeat("a.", 200'000) + "b = 1\n";
  auto r = parse_in_child(deep, "deep.toml", unlimited, small);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("the pipeline parser crashed on deep.toml: SIGSEGV"),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("1.0 MiB stack"), std::string::npos) << r.error().message;
  // Control: the same limits parse a normal file, in this same process.
  auto ok = parse_in_child(kValid, "f.toml", unlimited, small);
  EXPECT_TRUE(ok.ok() && ok->pipeline) << (ok.ok() ? "" : ok.error().message);
}

TEST(ParseInChildTest, MemoryLimit) {
  ParserLimits tiny;
  tiny.memory_bytes = 2 << 20;
  // About 100 MiB to parse: more than the free heap this test process may keep mapped (which
  // the child may use beyond its budget).
  std::string heavy = "version = 1\nx = [" + repeat("1,", 500'000) + "1]\n";
  auto r = parse_in_child(heavy, "big.toml", {}, tiny);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("ran out of memory on big.toml"), std::string::npos)
      << r.error().message;
  auto ok = parse_in_child(big_valid(), "big.toml", {}, {});
  EXPECT_TRUE(ok.ok()) << "control, the default budget: " << ok.error().message;
}

TEST(ParseInChildTest, WallClockAndCancel) {
  ParserLimits hurried;
  hurried.wall = Millis(1);  // no fork and parse of 600 KB fit in a millisecond
  auto r = parse_in_child("version = 1\nx = [" + repeat("1,", 300'000) + "1]\n", "big.toml", {},
                          hurried);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("took longer than"), std::string::npos) << r.error().message;

  std::atomic<bool> cancelled{true};
  auto c = parse_in_child(kValid, "f.toml", {}, {}, &cancelled);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("cancelled"), std::string::npos) << c.error().message;
}

TEST(LoadRepoPipelineTest, FileSizeLimit) {
  char tmpl[] = "/tmp/boxcar-repo-pipeline-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  fs::path dir = tmpl;
  std::ofstream(dir / ".boxcar.toml") << kValid << "# " << repeat("x", 200) << "\n";
  pipeline::Limits small;
  small.file_bytes = 100;
  auto r = load_repo_pipeline(dir, "", "0123456789abcdef", small, {}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("pipeline file .boxcar.toml is 248 B, larger than 100 B (the "
                                   "limit for a pipeline file)"),
            std::string::npos)
      << r.error().message;
  auto ok = load_repo_pipeline(dir, "", "0123456789abcdef", {}, {}, nullptr);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok->loaded.pipeline);
  EXPECT_EQ(ok->name, ".boxcar.toml");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace boxcar::agent
