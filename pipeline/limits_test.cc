#include "pipeline/limits.h"

#include <gtest/gtest.h>

#include "pipeline/load.h"

namespace boxcar::pipeline {
namespace {

std::string repeat(std::string_view s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

std::vector<std::string> errors_of(std::string_view text, const Limits& limits = {}) {
  std::vector<std::string> out;
  for (const Diagnostic& d : parse_pipeline(text, "f.toml", limits).errors) {
    out.push_back(d.to_string());
  }
  return out;
}

bool has_error(const std::vector<std::string>& errors, std::string_view part) {
  for (const auto& e : errors) {
    if (e.find(part) != std::string::npos) return true;
  }
  return false;
}

std::string joined(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& e : errors) out += e + "\n";
  return out;
}

const char* kStep = "[[step]]\nname = \"a\"\nrun = \"true\"\n";

TEST(ScanNestingTest, CountsTablesArraysAndDottedKeys) {
  EXPECT_EQ(scan_nesting("", 100).depth, 0);
  EXPECT_EQ(scan_nesting("a = 1\n", 100).depth, 1);
  EXPECT_EQ(scan_nesting("a.b.c = 1\n", 100).depth, 3);
  EXPECT_EQ(scan_nesting("a = [[[1]]]\n", 100).depth, 3);
  EXPECT_EQ(scan_nesting("a = { b = { c.d = 1 } }\n", 100).depth, 4);
  EXPECT_EQ(scan_nesting("a = [{ b.c = 1 }, { d = [2] }]\n", 100).depth, 4);
  EXPECT_EQ(scan_nesting("[t]\nx.y = 1\n", 100).depth, 3);
  // An array of tables and its table: two levels; each part before the last may be one too.
  EXPECT_EQ(scan_nesting("[[step]]\nname = \"a\"\n", 100).depth, 3);
  EXPECT_EQ(scan_nesting("[[step.service]]\nready = { tcp = 1 }\n", 100).depth, 6);
}

TEST(ScanNestingTest, StringsAndCommentsDoNotCount) {
  EXPECT_EQ(scan_nesting("a = \"[[[{{{a.b.c\"\n", 100).depth, 1);
  EXPECT_EQ(scan_nesting("a = '[[[' # [[[[ x.y.z\n", 100).depth, 1);
  EXPECT_EQ(scan_nesting("a = \"\"\"\n[[[\nb.c.d = 1\n\"\"\"\nz = 1\n", 100).depth, 1);
  EXPECT_EQ(scan_nesting("a = '''\n[[[\n'''\n", 100).depth, 1);
  EXPECT_EQ(scan_nesting("a = \"x\\\"[[[\"\n", 100).depth, 1) << "an escaped quote";
  EXPECT_EQ(scan_nesting("\"a.b.c\" = 1\n", 100).depth, 1) << "a quoted key is one part";
  EXPECT_EQ(scan_nesting("a = \"\"\"x\"\"\"\"\nb.c = 1\n", 100).depth, 2) << "\"\"\"x\"\"\"\" ends";
}

TEST(ScanNestingTest, MultiLineArraysKeepTheirDepth) {
  EXPECT_EQ(scan_nesting("a = [\n  [1],\n  [[2]],\n]\nb = 1\n", 100).depth, 3);
}

TEST(ScanNestingTest, StopsAndPointsWhereTheLimitIsPassed) {
  NestingScan s = scan_nesting("ok = 1\nx = " + repeat("[", 100000) + "\n", 32);
  EXPECT_EQ(s.depth, 33);
  EXPECT_EQ(s.where.line, 2);
  EXPECT_EQ(s.where.column, 5 + 32);
  NestingScan k = scan_nesting(repeat("a.", 60000) + "b = 1\n", 32);
  EXPECT_EQ(k.depth, 60001) << "a key is measured whole";
  EXPECT_EQ(k.where.line, 1);
  EXPECT_EQ(k.where.column, 1);
}

TEST(ScanNestingTest, GarbageEnds) {
  for (std::string_view junk : {"[[[[", "]]]]}}}", "{ = = ,,, ]", "\"\"\"", "a = '''", "[a.\"b",
                                "= [\n[\n[", "x = {a = [}, ]}"}) {
    EXPECT_GE(scan_nesting(junk, 100).depth, 0) << junk;
  }
}

// What the user reported: 120 KB of dotted keys or brackets overflowed the stack in toml++.
TEST(PipelineLimitsTest, DeepFilesAreRefusedBeforeParsing) {
  for (const std::string& deep :
       {"version = 1\n" + repeat("a.", 60000) + "b = 1\n",
        "version = 1\nx = " + repeat("[", 120000) + "\n",
        "version = 1\nx = " + repeat("{a=", 40000) + "\n",
        "version = 1\n[" + repeat("a.", 60000) + "b]\n"}) {
    auto errors = errors_of(deep);
    ASSERT_EQ(errors.size(), 1u) << joined(errors);
    EXPECT_TRUE(has_error(errors, "f.toml:2:")) << errors[0];
    EXPECT_TRUE(has_error(errors, "nest deeper than 32 levels")) << errors[0];
  }
  // The control: a real pipeline's nesting is well inside.
  EXPECT_TRUE(errors_of(std::string("version = 1\n") + kStep +
                        "[[step.service]]\nname = \"db\"\nrun = \"x\"\nready = { tcp = 5 }\n")
                  .empty());
  Limits shallow;
  shallow.depth = 4;
  EXPECT_TRUE(has_error(errors_of("version = 1\na.b.c.d.e = 1\n", shallow), "deeper than 4"));
}

TEST(PipelineLimitsTest, LongLinesAreShownAroundTheCaret) {
  std::string text = "version = 1\nx = " + repeat("[", 120000) + "\n";
  LoadResult r = parse_pipeline(text, "f.toml");
  std::string shown = render_diagnostics(r.errors, text);
  EXPECT_LT(shown.size(), 600u) << shown;
  EXPECT_NE(shown.find("\nx = [[[[["), std::string::npos) << shown;
  EXPECT_NE(shown.find("[[[...\n"), std::string::npos) << shown;
  size_t caret_line = shown.rfind('\n', shown.size() - 2) + 1;
  EXPECT_EQ(shown.substr(caret_line), std::string(36, ' ') + "^\n") << "under column 37";
}

TEST(PipelineLimitsTest, FileSize) {
  Limits small;
  small.file_bytes = 64;
  std::string text = std::string("version = 1\n") + kStep + "# " + repeat("x", 100) + "\n";
  auto errors = errors_of(text, small);
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_EQ(errors[0].rfind("f.toml:5:", 0), 0u) << "points where the limit is passed: " << errors[0];
  EXPECT_TRUE(has_error(errors, "larger than 64 B (64 bytes, the limit for a pipeline file)"));
  EXPECT_EQ(Limits{}.file_bytes, 1u << 20);
  EXPECT_TRUE(errors_of(text).empty()) << "the default allows it";
}

TEST(PipelineLimitsTest, ExpandedSteps) {
  // 4 steps x 16 x 16: 1,024 sandboxes for one job.
  std::string text = "version = 1\n";
  for (int i = 0; i < 4; ++i) {
    text += "[[step]]\nname = \"s" + std::to_string(i) + "\"\nrun = \"true\"\n" +
            "matrix = { a = [" + repeat("\"x\",", 15) + "\"y\"], b = [" + repeat("\"p\",", 15) +
            "\"q\"] }\n";
  }
  // The matrix values repeat: the expansion names clash. Only the count matters here.
  auto errors = errors_of(text);
  EXPECT_TRUE(has_error(errors, "f.toml:14:1: error: step \"s3\": with its matrix the pipeline has "
                                "1024 steps (limit 1000 steps after matrix expansion)"))
      << joined(errors);
  Limits more;
  more.expanded_steps = 1024;
  EXPECT_FALSE(has_error(errors_of(text, more), "after matrix expansion")) << "the limit is a setting";
}

TEST(PipelineLimitsTest, ManyStepTablesAreRefusedBeforeReadingThem) {
  std::string text = "version = 1\n" + repeat(kStep, 1001);
  auto errors = errors_of(text);
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_TRUE(has_error(errors, "step #1001: the file has 1001 [[step]] tables (limit 1000 steps"))
      << errors[0];
}

// The reported amplification: a 200 KB [defaults].env value x 100 steps x 256 cells asked
// for ~5 GB. Refused while parsing, before any copy is made.
TEST(PipelineLimitsTest, AmplifiedEnvIsRefusedBeforeItIsCopied) {
  std::string text = "version = 1\n[defaults]\nenv = { BIG = \"" + repeat("x", 200'000) + "\" }\n";
  for (int i = 0; i < 100; ++i) {
    text += "[[step]]\nname = \"s" + std::to_string(i) + "-${matrix.a}-${matrix.b}\"\n" +
            "run = \"true\"\nmatrix = { a = [" + repeat("\"x\",", 15) + "\"y\"], b = [" +
            repeat("\"p\",", 15) + "\"q\"] }\n";
  }
  auto errors = errors_of(text);
  EXPECT_TRUE(has_error(errors, "f.toml:3:15: error: env \"BIG\": BIG=value is 200004 bytes, over "
                                "the limit of 131071 for one environment variable"))
      << joined(errors);
  EXPECT_TRUE(has_error(errors, "[env] and [defaults], copied into each of the 100 steps, come to"))
      << joined(errors);
}

TEST(PipelineLimitsTest, ExpandedBytes) {
  // Under every other limit (a 100 KB value, 200 expanded steps), but 20 MB expanded.
  std::string text = "version = 1\n[env]\nV = \"" + repeat("v", 100'000) + "\"\n";
  for (int i = 0; i < 2; ++i) {
    text += "[[step]]\nname = \"s" + std::to_string(i) + "-${matrix.n}\"\nrun = \"true\"\n" +
            "matrix = { n = [";
    for (int n = 0; n < 100; ++n) text += (n ? ", \"" : "\"") + std::to_string(n) + "\"";
    text += "] }\n";
  }
  // 200 cells x the 100 KB value, and each cell's copy of the step's 100-value matrix.
  auto errors = errors_of(text);
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_TRUE(has_error(errors, "step \"s1-${matrix.n}\": with this step the pipeline's names, "
                                "scripts and env come to 20.4 MiB (limit 16.0 MiB after matrix "
                                "expansion): move large values into files"))
      << errors[0];
  // Interpolation multiplies too: a short run with many references to a long value.
  std::string refs = "version = 1\n[[step]]\nname = \"r-${matrix.n}\"\nrun = \"" +
                     repeat("${matrix.v}", 10'000) + "\"\nmatrix = { n = [\"1\", \"2\"], v = [\"" +
                     repeat("w", 1000) + "\"] }\n";
  EXPECT_TRUE(has_error(errors_of(refs), "come to 19.1 MiB")) << joined(errors_of(refs));
}

TEST(PipelineLimitsTest, ExpandedBytesMatchWhatExpandHolds) {
  LoadResult r = parse_pipeline(R"(version = 1
[[step]]
name = "t-${matrix.cc}-${matrix.opt}"
run = "make CC=${matrix.cc} ${matrix.cc}"
matrix = { cc = ["gcc", "clang"], opt = ["O0", "O2", "O3"] }
env = { X = "${matrix.opt}" }
)",
                                "f.toml");
  ASSERT_TRUE(r.pipeline) << render_diagnostics(r.errors, "");
  ExpandedPipeline e = expand(*r.pipeline);
  uint64_t run_bytes = 0;
  for (const auto& c : e.steps) run_bytes += c.step.run.size();
  EXPECT_EQ(e.steps.size(), 6u);
  EXPECT_EQ(run_bytes, 3u * 15 + 3u * 19) << "\"make CC=gcc gcc\" x3 cells, clang x3";
  uint64_t estimate = expanded_bytes(r.pipeline->steps[0]);
  EXPECT_GT(estimate, run_bytes);
  EXPECT_LT(estimate, 20'000u) << "the estimate stays near what is held";
}

TEST(PipelineLimitsTest, EnvValueAndCount) {
  // "A=" + value + NUL: at most 128 KiB reach a process.
  std::string big = std::string("version = 1\n") + kStep + "env = { A = \"" +
                    repeat("a", (128 << 10) - 2) + "\", B = \"" + repeat("b", (128 << 10) - 3) +
                    "\" }\n";
  auto errors = errors_of(big);
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_TRUE(has_error(errors, "f.toml:5:13: error: env \"A\": A=value is 131072 bytes, over the limit of "
                                "131071 for one environment variable")) << errors[0];

  std::string many = "version = 1\n[env]\n";
  for (int i = 0; i < 1001; ++i) many += "V" + std::to_string(i) + " = \"\"\n";
  many += kStep;
  errors = errors_of(many);
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_TRUE(has_error(errors, "step \"a\": 1001 environment variables with [env] and "
                                "[defaults].env (limit 1000 per step)"))
      << errors[0];
}

}  // namespace
}  // namespace boxcar::pipeline
