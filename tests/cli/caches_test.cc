// `boxcar run` end to end: [[step.cache]] through real sandboxes of the native executor, with the
// store beside the image cache (XDG_CACHE_HOME here). An npm-like step "downloads" into
// node_modules and ~/.npm only when they are absent.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/cli/boxcar_process.h"

namespace boxcar::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPipeline = R"toml(version = 1
[[step]]
name = "install"
run = """
if [ -e node_modules/left-pad/index.js ]; then echo "had $(cat node_modules/left-pad/index.js)"; else
  echo DOWNLOADING
  mkdir -p node_modules/left-pad ~/.npm
  cat package-lock.json > node_modules/left-pad/index.js
  echo tarball > ~/.npm/left-pad.tgz
  ln -s left-pad/index.js node_modules/main.js
  ln -s /etc/hostname node_modules/evil
fi
test -f ~/.npm/left-pad.tgz
test ! -e node_modules/evil || test -L node_modules/evil
"""
[[step.cache]]
key = "npm-${hash:package-lock.json}"
restore_keys = ["npm-"]
paths = ["node_modules", "~/.npm"]

[[step]]
name = "uses"
needs = ["install"]
run = "test -L node_modules/main.js && test -e node_modules/left-pad/index.js"

[[step]]
name = "broken"
allow_failure = true
run = "mkdir -p out && echo half > out/made.txt && exit 3"
[[step.cache]]
key = "broken-1"
paths = ["out"]
)toml";

class CachesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = executor_unavailable("native"); !why.empty()) GTEST_SKIP() << why;
  }
  ProcessResult run(const TempDir& repo) {
    return run_boxcar({"run", "--json", "--jobs", "1", "--executor", "native"}, repo.path(),
                      {"XDG_CACHE_HOME=" + cache_.path().string()});
  }
  static std::vector<std::string> notices(const ProcessResult& r) {
    std::vector<std::string> out;
    for (const auto& e : r.events()) {
      if (e.at("event").as_string() == "notice") out.emplace_back(e.at("message").as_string());
    }
    return out;
  }
  static bool has(const ProcessResult& r, const std::string& text) {
    for (const auto& n : notices(r)) {
      if (n.find(text) != std::string::npos) return true;
    }
    return false;
  }
  static std::string all(const ProcessResult& r) {
    std::string s;
    for (const auto& n : notices(r)) s += n + "\n";
    return s;
  }
  TempDir cache_;
};

TEST_F(CachesTest, SecondRunRestoresPrefixHitsFailingStepSavesNothingReposNeverShare) {
  TempDir a, b;
  for (const TempDir* d : {&a, &b}) {
    d->write(".boxcar.toml", kPipeline);
    d->write("package-lock.json", "v1\n");
  }
  auto first = run(a);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_NE(first.out.find("DOWNLOADING"), std::string::npos);
  EXPECT_TRUE(has(first, "install: cache npm-")) << all(first);
  EXPECT_TRUE(has(first, ": miss")) << all(first);
  EXPECT_TRUE(has(first, ": saved (")) << all(first);
  // The attack in a saved path: a link out of the workspace is left out, with a line; the
  // control, a link inside it, is kept (the dependent "uses" and the second run see it).
  EXPECT_TRUE(has(first, "\"node_modules/evil\" left out: a link pointing out of the workspace")) << all(first);
  EXPECT_TRUE(has(first, "broken: cache broken-1: miss")) << all(first);
  EXPECT_FALSE(has(first, "broken: cache broken-1: saved")) << all(first);

  auto second = run(a);
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_EQ(second.out.find("DOWNLOADING"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("had v1"), std::string::npos) << second.out;
  EXPECT_TRUE(has(second, ": restored (exact)")) << all(second);
  EXPECT_FALSE(has(second, "install: cache npm-") && has(second, ": saved (")) << all(second);
  // A failing step saved nothing: still a miss.
  EXPECT_TRUE(has(second, "broken: cache broken-1: miss")) << all(second);
  // The restore is a lower layer: the checkout on the host got nothing.
  EXPECT_FALSE(fs::exists(a.path() / "node_modules"));

  // Another repository (another path, no origin) with the same key: never shared.
  auto other = run(b);
  ASSERT_EQ(other.exit_code, 0) << other.out << other.err;
  EXPECT_NE(other.out.find("DOWNLOADING"), std::string::npos) << all(other);
  EXPECT_FALSE(has(other, "restored")) << all(other);

  // A new lock file: a miss of its key, found by the "npm-" prefix (the older entry's contents).
  a.write("package-lock.json", "v2\n");
  auto third = run(a);
  ASSERT_EQ(third.exit_code, 0) << third.out << third.err;
  EXPECT_TRUE(has(third, "(prefix npm-)")) << all(third);
  EXPECT_NE(third.out.find("had v1"), std::string::npos) << third.out;
  EXPECT_TRUE(has(third, ": saved (")) << all(third);
}

}  // namespace
}  // namespace boxcar::testing
