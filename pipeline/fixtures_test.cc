// The fixture suite of tests/testdata/pipelines: valid files load and expand; every invalid
// (schema-detectable) and semantic (parser-only) file gives exactly its .expected errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "pipeline/load.h"

namespace boxcar::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kRoot = fs::path(BOXCAR_SOURCE_DIR) / "tests" / "testdata" / "pipelines";

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t start = s.find_first_not_of("\n\r ");
  return start == std::string::npos ? "" : s.substr(start);
}

std::vector<fs::path> tomls(const std::string& folder) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kRoot / folder)) {
    if (e.path().extension() == ".toml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void expect_errors(const std::string& folder) {
  for (const fs::path& path : tomls(folder)) {
    SCOPED_TRACE(path.string());
    fs::path expected_path = fs::path(path).replace_extension(".expected");
    ASSERT_TRUE(fs::exists(expected_path)) << "missing " << expected_path;
    std::string text = read(path);
    LoadResult r = parse_pipeline(text, path.filename().string());
    std::string got;
    for (const Diagnostic& d : r.errors) got += (got.empty() ? "" : "\n") + d.to_string();
    EXPECT_EQ(got, trim(read(expected_path))) << render_diagnostics(r.errors, text);
    EXPECT_FALSE(r.pipeline.has_value());
  }
}

TEST(FixtureTest, ValidPipelinesLoadAndExpand) {
  auto files = tomls("valid");
  EXPECT_GE(files.size(), 8u);
  for (const fs::path& path : files) {
    SCOPED_TRACE(path.string());
    std::string text = read(path);
    LoadResult r = parse_pipeline(text, path.filename().string());
    ASSERT_TRUE(r.errors.empty()) << render_diagnostics(r.errors, text);
    ASSERT_TRUE(r.pipeline.has_value());
    ExpandedPipeline e = expand(*r.pipeline);
    EXPECT_GE(e.steps.size(), r.pipeline->steps.size());
  }
}

TEST(FixtureTest, InvalidPipelinesGiveTheExpectedErrors) { expect_errors("invalid"); }

TEST(FixtureTest, SemanticPipelinesGiveTheExpectedErrors) { expect_errors("semantic"); }

TEST(FixtureTest, SuiteHasAtLeastThirtyBrokenPipelines) {
  EXPECT_GE(tomls("invalid").size() + tomls("semantic").size(), 30u);
}

TEST(FixtureTest, EveryExpectedFileHasItsPipeline) {
  for (const std::string folder : {"invalid", "semantic"}) {
    for (const auto& e : fs::directory_iterator(kRoot / folder)) {
      if (e.path().extension() != ".expected") continue;
      EXPECT_TRUE(fs::exists(fs::path(e.path()).replace_extension(".toml"))) << e.path();
    }
  }
}

}  // namespace
}  // namespace boxcar::pipeline
