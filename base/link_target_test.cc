#include "base/link_target.h"

#include <gtest/gtest.h>

#include <map>

namespace boxcar {
namespace {

TEST(LinkTarget, ReadFromTheLinksDirectory) {
  EXPECT_EQ(lexical_link_target("lib/libx.so", "libx.so.1"), "lib/libx.so.1");
  EXPECT_EQ(lexical_link_target("bin/x", "../lib/./x"), "lib/x");
  EXPECT_EQ(lexical_link_target("x", "a/b/../c"), "a/c");
}

TEST(LinkTarget, RefusesAbsoluteEmptyAndAboveTheRoot) {
  EXPECT_EQ(lexical_link_target("x", "/etc/passwd"), std::nullopt);
  EXPECT_EQ(lexical_link_target("x", ""), std::nullopt);
  EXPECT_EQ(lexical_link_target("out/x", "../../x"), std::nullopt);
  EXPECT_EQ(lexical_link_target("out/x", ".."), std::nullopt);  // "out/x/.." would be outside
  EXPECT_EQ(lexical_link_target("x", std::string_view("a\0b", 3)), std::nullopt);
}

struct Set {
  std::map<std::string, std::string> links;
  LinkResolution operator()(const std::string& p) const {
    return resolve_in_set(p, [this](const std::string& q) -> std::optional<std::string> {
      auto it = links.find(q);
      if (it == links.end()) return std::nullopt;
      return it->second;
    });
  }
};

TEST(LinkTarget, ResolvesChainsAndLinkedDirectories) {
  Set s{{{"lib/libx.so", "libx.so.1"}, {"lib/libx.so.1", "libx.so.1.2"}, {"lib64", "lib"},
         {"bin/x", "../lib64/libx.so"}}};
  EXPECT_EQ(s("lib/libx.so").path, "lib/libx.so.1.2");
  EXPECT_EQ(s("bin/x").path, "lib/libx.so.1.2");
  EXPECT_EQ(s("lib64/libx.so.1").path, "lib/libx.so.1.2");
}

TEST(LinkTarget, RefusesChainsThatLeaveOrLoop) {
  Set s{{{"a", "b"}, {"b", "/etc/passwd"}, {"up", "sub/../.."}, {"loop1", "loop2"}, {"loop2", "loop1"},
         {"d/x", "../../y"}, {"root", "."}, {"via-root", "root/.."}}};
  EXPECT_FALSE(s("a").ok());
  EXPECT_NE(s("a").error.find("\"b\""), std::string::npos) << s("a").error;
  EXPECT_FALSE(s("up").ok());
  EXPECT_FALSE(s("loop1").ok());
  EXPECT_FALSE(s("d/x").ok());
  EXPECT_FALSE(s("root").ok());
  EXPECT_FALSE(s("via-root").ok());
}

}  // namespace
}  // namespace boxcar
