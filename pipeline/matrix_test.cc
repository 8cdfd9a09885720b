#include "pipeline/matrix.h"

#include <gtest/gtest.h>

#include "pipeline/load.h"

namespace boxcar::pipeline {
namespace {

ExpandedPipeline expand_ok(std::string_view text) {
  LoadResult r = parse_pipeline(text, "f.toml");
  EXPECT_TRUE(r.errors.empty()) << render_diagnostics(r.errors, text);
  if (!r.pipeline) return {};
  return expand(*r.pipeline);
}

std::vector<std::string> errors_of(std::string_view text) {
  std::vector<std::string> out;
  for (const Diagnostic& d : parse_pipeline(text, "f.toml").errors) out.push_back(d.to_string());
  return out;
}

TEST(MatrixTest, FindsOnlyMatrixReferences) {
  auto refs = find_matrix_refs("echo ${HOME} ${matrix.cc} $matrix ${matrix.opt}");
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].axis, "cc");
  EXPECT_EQ(refs[0].offset, 13u);
  EXPECT_EQ(refs[0].length, 12u);
  EXPECT_EQ(refs[1].axis, "opt");
}

TEST(MatrixTest, InterpolateLeavesShellVariablesAndUnknownAxes) {
  EXPECT_EQ(interpolate("${CC:-x} ${matrix.cc} ${matrix.os}", {{"cc", "gcc"}}),
            "${CC:-x} gcc ${matrix.os}");
  EXPECT_EQ(strip_matrix_refs("test-${matrix.cc}-x"), "test--x");
}

TEST(MatrixTest, CombinationsAreAlphabeticalAxesInWrittenValueOrder) {
  auto combos = combinations({{"opt", {"O2", "O0"}}, {"cc", {"gcc", "clang"}}});
  ASSERT_EQ(combos.size(), 4u);
  EXPECT_EQ(expansion_name("t", combos[0]), "t (cc=gcc, opt=O2)");
  EXPECT_EQ(expansion_name("t", combos[1]), "t (cc=gcc, opt=O0)");
  EXPECT_EQ(expansion_name("t", combos[2]), "t (cc=clang, opt=O2)");
  EXPECT_EQ(expansion_name("t", combos[3]), "t (cc=clang, opt=O0)");
  EXPECT_EQ(combinations({}).size(), 1u);
  EXPECT_EQ(combination_count({{"a", {"1", "2", "3"}}, {"b", {"x", "y"}}}), 6u);
}

TEST(MatrixTest, ExpandsNamesInterpolatesAndResolvesNeeds) {
  ExpandedPipeline e = expand_ok(R"(version = 1
[[step]]
name = "test"
run = "make CC=${matrix.cc} OPT=-${matrix.opt} HOME=${HOME}"
image = "gcc:${matrix.v}"
env = { CC = "${matrix.cc}" }
matrix = { cc = ["gcc", "clang"], opt = ["O0"], v = [12] }
[[step]]
name = "pkg"
run = "true"
needs = ["test"]
)");
  ASSERT_EQ(e.steps.size(), 3u);
  EXPECT_EQ(e.steps[0].name, "test (cc=gcc, opt=O0, v=12)");
  EXPECT_EQ(e.steps[0].base_name, "test");
  EXPECT_EQ(e.steps[0].matrix_values.at("cc"), "gcc");
  EXPECT_EQ(e.steps[0].step.run, "make CC=gcc OPT=-O0 HOME=${HOME}");
  EXPECT_EQ(e.steps[0].step.image, "gcc:12");
  EXPECT_EQ(e.steps[0].step.env.at("CC"), "gcc");
  EXPECT_EQ(e.steps[1].name, "test (cc=clang, opt=O0, v=12)");
  EXPECT_EQ(e.steps[1].step.env.at("CC"), "clang");
  EXPECT_EQ(e.steps[2].name, "pkg");
  EXPECT_EQ(e.steps[2].needs, (std::vector<size_t>{0, 1}));
}

TEST(MatrixTest, NameWithReferencesIsTheExpansionName) {
  ExpandedPipeline e = expand_ok(R"(version = 1
[[step]]
name = "build-${matrix.os}"
run = "true"
matrix = { os = ["linux", "bsd"], debug = [true] }
[[step]]
name = "all"
run = "true"
needs = ["build-${matrix.os}"]
)");
  ASSERT_EQ(e.steps.size(), 3u);
  EXPECT_EQ(e.steps[0].name, "build-linux");
  EXPECT_EQ(e.steps[0].step.name, "build-linux");
  EXPECT_EQ(e.steps[0].matrix_values.at("debug"), "true");
  EXPECT_EQ(e.steps[1].name, "build-bsd");
  EXPECT_EQ(e.steps[2].needs, (std::vector<size_t>{0, 1}));
}

TEST(MatrixTest, StepsWithoutMatrixKeepTheirNameAndFileOrder) {
  ExpandedPipeline e = expand_ok(R"(version = 1
name = "ci"
[[step]]
name = "b"
run = "true"
needs = ["a"]
[[step]]
name = "a"
run = "true"
)");
  ASSERT_EQ(e.steps.size(), 2u);
  EXPECT_EQ(e.name, "ci");
  EXPECT_EQ(e.steps[0].name, "b");
  EXPECT_TRUE(e.steps[0].matrix_values.empty());
  EXPECT_EQ(e.steps[0].needs, std::vector<size_t>{1});
}

TEST(MatrixTest, ReferenceToUnknownAxisSuggestsOne) {
  auto errors = errors_of(R"(version = 1
[[step]]
name = "t"
run = "make CC=${matrix.ccc}"
matrix = { cc = ["gcc"] }
[[step]]
name = "u"
run = "true"
env = { X = "${matrix.cc}" }
)");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "f.toml:4:7: error: step \"t\": \"run\" refers to ${matrix.ccc}, not an "
                       "axis of the step's matrix (did you mean \"cc\"?)");
  EXPECT_EQ(errors[1], "f.toml:9:13: error: step \"u\": env \"X\" refers to ${matrix.cc} but the "
                       "step has no matrix");
}

TEST(MatrixTest, TooManyCombinations) {
  auto errors = errors_of(R"(version = 1
[[step]]
name = "t"
run = "true"
matrix = { a = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17], b = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16] }
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "f.toml:2:1: error: step \"t\": matrix has 272 combinations (at most 256)");
}

TEST(MatrixTest, ExpansionNamesMustBeUnique) {
  auto errors = errors_of(R"(version = 1
[[step]]
name = "t-${matrix.a}"
run = "true"
matrix = { a = ["x"], b = ["1", "2"] }
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "f.toml:3:8: error: step \"t-${matrix.a}\": two expansions are named "
                       "\"t-x\" (use every matrix axis in the name)");
}

}  // namespace
}  // namespace boxcar::pipeline
