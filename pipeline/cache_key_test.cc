#include "pipeline/cache_key.h"

#include <gtest/gtest.h>

namespace boxcar::pipeline {
namespace {

using Kind = CacheKeyPart::Kind;

TEST(CacheKeyTest, SplitsTextBranchAndHash) {
  auto parts = parse_cache_key("npm-${branch}-${hash:package-lock.json,**/yarn.lock}");
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 4u);
  EXPECT_EQ((*parts)[0].text, "npm-");
  EXPECT_EQ((*parts)[1].kind, Kind::branch);
  EXPECT_EQ((*parts)[2].text, "-");
  EXPECT_EQ((*parts)[3].kind, Kind::hash);
  EXPECT_EQ((*parts)[3].globs, (std::vector<std::string>{"package-lock.json", "**/yarn.lock"}));
}

TEST(CacheKeyTest, RendersBranchSafelyAndEachHash) {
  auto parts = parse_cache_key("k-${branch}-${hash:a}");
  ASSERT_TRUE(parts);
  std::vector<std::string> asked;
  auto key = render_cache_key(*parts, "feat/x y\x1b", [&](const std::vector<std::string>& globs) {
    asked.insert(asked.end(), globs.begin(), globs.end());
    return Result<std::string>(std::string("abc"));
  });
  ASSERT_TRUE(key);
  EXPECT_EQ(*key, "k-feat/x_y_-abc");
  EXPECT_EQ(asked, std::vector<std::string>{"a"});
}

TEST(CacheKeyTest, HashErrorIsTheKeysError) {
  auto parts = parse_cache_key("k-${hash:a}");
  ASSERT_TRUE(parts);
  auto key = render_cache_key(*parts, "main", [](const std::vector<std::string>&) {
    return Result<std::string>(Error{"too many files"});
  });
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().message, "too many files");
}

TEST(CacheKeyTest, RenderedKeyIsBounded) {
  auto parts = parse_cache_key("${branch}");
  ASSERT_TRUE(parts);
  auto key = render_cache_key(*parts, std::string(300, 'b'),
                              [](const std::vector<std::string>&) { return Result<std::string>(""); });
  ASSERT_FALSE(key);
  EXPECT_NE(key.error().message.find("over 256"), std::string::npos) << key.error().message;
}

TEST(CacheKeyTest, RefusesWhatCannotBeAKey) {
  for (const char* bad : {"", "npm-${commit}", "npm-${hash:../lock}", "npm-${hash:/etc/passwd}",
                          "npm-${hash:}", "a b", "npm-${branch", "tab\t"}) {
    SCOPED_TRACE(bad);
    auto parts = parse_cache_key(bad);
    EXPECT_FALSE(parts);
  }
  EXPECT_FALSE(parse_cache_key(std::string(257, 'k')));
  EXPECT_TRUE(parse_cache_key("plain-$HOME-1.2_x/y"));
}

}  // namespace
}  // namespace boxcar::pipeline
