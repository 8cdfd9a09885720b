// `boxcar run` end to end: each step's own workspace layer (agent/workspace_layers.h) through a
// real sandbox of each isolated executor. --jobs 1 runs a step's sibling to its end before it,
// so "a sibling's writes are invisible" is not a matter of timing: in a shared workspace the
// sibling's files would be there.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "tests/cli/boxcar_process.h"

namespace boxcar::testing {
namespace {

namespace fs = std::filesystem;

class LayersTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (std::string why = executor_unavailable(GetParam()); !why.empty()) GTEST_SKIP() << why;
  }
  // Layers go beside the image cache: under XDG_CACHE_HOME, here inside the test's directory
  // but outside the workspace.
  std::vector<std::string> env() const { return {"XDG_CACHE_HOME=" + cache_.path().string()}; }
  fs::path layers_base() const { return cache_.path() / "boxcar" / "layers"; }
  TempDir cache_;
};

std::string status_of(const ProcessResult& r, const std::string& step) {
  for (const auto& e : r.events()) {
    if (e.at("event").as_string() == "step_finished" && e.at("step").as_string() == step) {
      return std::string(e.at("status").as_string());
    }
  }
  return "(not finished)";
}

std::map<std::string, std::set<std::string>> artifacts_by_step(const ProcessResult& r) {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& e : r.events()) {
    if (e.at("event").as_string() == "artifact") {
      out[std::string(e.at("step").as_string())].insert(std::string(e.at("path").as_string()));
    }
  }
  return out;
}

TEST_P(LayersTest, EachStepSeesItsNeedsAndNeverASibling) {
  TempDir dir;
  dir.write("checkout.txt", "from the checkout\n");
  dir.write("owned.txt", "x\n");
  ASSERT_EQ(::chown((dir.path() / "owned.txt").c_str(), 1234, 1234), 0);
  // base -> left, right (siblings, both writing same.txt) -> both [left, right], rev [right, left].
  dir.write(".boxcar.toml", R"toml(version = 1
[[step]]
name = "base"
run = """
echo base > same.txt
echo g > gone.txt
test "$(stat -c %u owned.txt)" = 1234
"""
[[step]]
name = "left"
needs = ["base"]
artifacts = ["art/*"]
run = """
test "$(cat same.txt)" = base
rm gone.txt
echo left > same.txt
echo l > left.txt
mkdir -p art && echo left > art/who.txt && echo l > art/left.txt
test "$(cat same.txt)" = left
"""
[[step]]
name = "right"
needs = ["base"]
artifacts = ["art/*"]
run = """
test ! -e left.txt || { echo "ATTACK: a sibling's file is visible"; exit 1; }
test -e gone.txt || { echo "ATTACK: a sibling's delete is visible"; exit 1; }
echo right > same.txt
echo r > right.txt
mkdir -p art && echo right > art/who.txt && echo r > art/right.txt
test "$(cat same.txt)" = right
"""
[[step]]
name = "both"
needs = ["left", "right"]
run = """
test "$(cat same.txt)" = right
test -e left.txt && test -e right.txt && test -e checkout.txt
test ! -e gone.txt
test "$(stat -c %u left.txt)" = 0
test "$(stat -c %u owned.txt)" = 1234
echo both > checkout.txt
"""
[[step]]
name = "rev"
needs = ["right", "left"]
run = """
test "$(cat same.txt)" = left
test "$(cat checkout.txt)" = "from the checkout"
"""
)toml");
  auto r = run_boxcar({"run", "--json", "--jobs", "1", "--executor", GetParam()}, dir.path(), env());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* step : {"base", "left", "right", "both", "rev"}) EXPECT_EQ(status_of(r, step), "success") << step;
  // Attribution: each step's artifacts from its own view, the same glob in both.
  auto arts = artifacts_by_step(r);
  EXPECT_EQ(arts["left"], (std::set<std::string>{"art/who.txt", "art/left.txt"}));
  EXPECT_EQ(arts["right"], (std::set<std::string>{"art/who.txt", "art/right.txt"}));
  // The checkout on the host is as it was: steps wrote to their layers, with its owners kept.
  EXPECT_EQ(dir.read("checkout.txt"), "from the checkout\n");
  EXPECT_FALSE(fs::exists(dir.path() / "same.txt"));
  struct stat st{};
  ASSERT_EQ(::stat((dir.path() / "owned.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  // The layers are gone with the run.
  EXPECT_TRUE(fs::exists(layers_base()));
  EXPECT_TRUE(fs::is_empty(layers_base())) << fs::directory_iterator(layers_base())->path();
}

TEST_P(LayersTest, ParallelWritersToOnePathEachKeepTheirOwn) {
  TempDir dir;
  // A run killed with SIGKILL leaves its layers and an unheld lock: the next run removes them.
  fs::create_directories(layers_base() / "20260101-000000-dead" / "0" / "workspace" / "upper");
  std::ofstream(layers_base() / "20260101-000000-dead.lock").put('\n');
  ASSERT_EQ(::mknod((layers_base() / "20260101-000000-dead/0/workspace/upper/whiteout").c_str(), S_IFCHR | 0000, 0), 0);
  dir.write(".boxcar.toml", R"toml(version = 1
[[step]]
name = "a"
run = "echo a > out.txt; sleep 0.2; test \"$(cat out.txt)\" = a"
[[step]]
name = "b"
run = "echo b > out.txt; sleep 0.2; test \"$(cat out.txt)\" = b"
)toml");
  auto r = run_boxcar({"run", "--json", "--jobs", "2", "--executor", GetParam()}, dir.path(), env());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(status_of(r, "a"), "success");
  EXPECT_EQ(status_of(r, "b"), "success");
  EXPECT_FALSE(fs::exists(dir.path() / "out.txt"));
  EXPECT_TRUE(fs::is_empty(layers_base())) << "the dead run's layers are removed";
}

INSTANTIATE_TEST_SUITE_P(Executors, LayersTest, ::testing::Values("native", "oci"));

TEST(LayersHostTest, TheHostExecutorSharesTheWorkspaceAsBefore) {
  TempDir dir, cache;
  dir.write(".boxcar.toml", R"toml(version = 1
[[step]]
name = "w"
run = "echo w > shared.txt"
[[step]]
name = "r"
run = "test -e shared.txt"
)toml");
  auto r = run_boxcar({"run", "--json", "--jobs", "1", "--executor", "host"}, dir.path(),
                      {"XDG_CACHE_HOME=" + cache.path().string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(dir.read("shared.txt"), "w\n");
  EXPECT_FALSE(fs::exists(cache.path() / "boxcar" / "layers")) << "no layers for the host executor";
}

}  // namespace
}  // namespace boxcar::testing
