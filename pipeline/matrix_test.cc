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

TEST(MatrixTest, NeedsNamesSomeCellsByTheirValues) {
  ExpandedPipeline e = expand_ok(R"P(version = 1
[[step]]
name = "build"
run = "true"
matrix = { cc = ["gcc", "clang"], opt = ["O0", "O2"], v = [12] }
[[step]]
name = "gcc-only"
run = "true"
needs = ["build (cc=gcc)"]
[[step]]
name = "one"
run = "true"
needs = ["build (opt=O2, cc=clang, v=12)", "build (cc=clang,opt=O2)"]
[[step]]
name = "tools-${matrix.t}"
run = "true"
matrix = { t = ["a", "b"] }
[[step]]
name = "by-expanded-name"
run = "true"
needs = ["tools-b", "build"]
)P");
  ASSERT_EQ(e.steps.size(), 9u);
  EXPECT_EQ(e.steps[4].needs, (std::vector<size_t>{0, 1}));  // gcc O0, gcc O2
  EXPECT_EQ(e.steps[5].needs, (std::vector<size_t>{3}));     // clang O2, named twice, once
  EXPECT_EQ(e.steps[8].needs, (std::vector<size_t>{7, 0, 1, 2, 3}));
}

TEST(MatrixTest, NeedOfNoCellSaysWhichCellsExist) {
  auto errors = errors_of(R"P(version = 1
[[step]]
name = "build"
run = "true"
matrix = { cc = ["gcc", "clang"] }
[[step]]
name = "a"
run = "true"
needs = ["build (cc=gcd)", "build (c=gcc)", "lint (x=1)"]
[[step]]
name = "lint"
run = "true"
)P");
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], "f.toml:9:10: error: step \"a\": needs \"build (cc=gcd)\", but step \"build\" has no "
                       "expansion with those values; it has \"build (cc=gcc)\", \"build (cc=clang)\" "
                       "(did you mean \"build (cc=gcc)\"?)");
  EXPECT_EQ(errors[1], "f.toml:9:28: error: step \"a\": needs \"build (c=gcc)\", but step \"build\" has no "
                       "matrix axis \"c\" (its axes: cc); did you mean \"cc\"?");
  EXPECT_EQ(errors[2], "f.toml:9:45: error: step \"a\": needs \"lint (x=1)\", but step \"lint\" has no "
                       "matrix (write needs = [\"lint\"])");
}

TEST(MatrixTest, EveryExpansionsWorkdirAndImageAreChecked) {
  std::string_view text = R"P(version = 1
[[step]]
name = "build"
run = "true"
workdir = "out/${matrix.dir}"
image = "${matrix.img}"
matrix = { dir = ["ok", "../../etc"], img = ["debian:12", "Debian:12"] }
[[step]]
name = "svc"
run = "true"
network = "none"
[[step.service]]
name = "db"
image = "postgres:16"
)P";
  auto check = [](std::string_view image) -> std::string {
    return image.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string_view::npos ? "" : "uppercase";
  };
  std::vector<std::string> errors;
  for (const Diagnostic& d : parse_pipeline(text, "f.toml", {}, check).errors) errors.push_back(d.to_string());
  ASSERT_EQ(errors.size(), 5u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "f.toml:5:11: error: step \"build\": expansion \"build (dir=../../etc, img=debian:12)\": "
                       "\"workdir\" must stay inside the workspace (no \"..\"), not \"out/../../etc\"");
  EXPECT_EQ(errors[2], "f.toml:6:9: error: step \"build\": expansion \"build (dir=ok, img=Debian:12)\": uppercase");
  EXPECT_NE(errors[4].find("f.toml:11:11: error: step \"svc\": service \"db\" runs from an image on the job's "
                           "network, which network = \"none\" cannot reach"), std::string::npos) << errors[4];
  // Without a checker the references are the agent's to judge; the workdir still is not.
  EXPECT_EQ(errors_of(text).size(), 3u);
}

}  // namespace
}  // namespace boxcar::pipeline
