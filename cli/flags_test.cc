#include "cli/flags.h"

#include <gtest/gtest.h>

namespace boxcar::cli {
namespace {

const std::vector<FlagSpec> kSpecs = {
    {"--file", true, false, "-f"}, {"--secret", true, true, ""}, {"--json", false, false, ""}};

TEST(FlagsTest, ValuesBothForms) {
  auto r = parse_flags({"--file", "a.toml", "--secret=A=1", "--secret", "B=2", "--json", "pos"}, kSpecs);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->get("--file"), "a.toml");
  EXPECT_EQ(r->all("--secret"), (std::vector<std::string>{"A=1", "B=2"}));
  EXPECT_TRUE(r->has("--json"));
  EXPECT_EQ(r->positional, std::vector<std::string>{"pos"});
}

TEST(FlagsTest, ShortName) {
  auto r = parse_flags({"-f", "x"}, kSpecs);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->get("--file"), "x");
}

TEST(FlagsTest, UnknownFlagSuggests) {
  auto r = parse_flags({"--fiel", "x"}, kSpecs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "unknown flag --fiel (did you mean --file?)");
}

TEST(FlagsTest, MissingValueAndRepeats) {
  EXPECT_EQ(parse_flags({"--file"}, kSpecs).error().message, "--file needs a value");
  EXPECT_EQ(parse_flags({"--file", "a", "--file", "b"}, kSpecs).error().message,
            "--file given more than once");
  EXPECT_EQ(parse_flags({"--json=yes"}, kSpecs).error().message, "--json takes no value");
}

TEST(FlagsTest, DoubleDashEndsFlags) {
  auto r = parse_flags({"--", "--json"}, kSpecs);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has("--json"));
  EXPECT_EQ(r->positional, std::vector<std::string>{"--json"});
}

}  // namespace
}  // namespace boxcar::cli
