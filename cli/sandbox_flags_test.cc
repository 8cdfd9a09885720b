#include "cli/sandbox_flags.h"

#include <gtest/gtest.h>

namespace boxcar::cli {
namespace {

Result<SandboxSettings> read(std::vector<std::string> args) {
  auto flags = parse_flags(args, with_sandbox_flags({}));
  EXPECT_TRUE(flags.ok());
  return read_sandbox_flags(*flags);
}

TEST(SandboxFlagsTest, DefaultsHostAThousandOnAFreeLoopbackPort) {
  auto s = read({});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->slots, 1000u);
  EXPECT_EQ(s->listen, "127.0.0.1:0");
  EXPECT_EQ(s->advertise, "");
}

TEST(SandboxFlagsTest, ANonLoopbackListenNeedsAnAdvertisedUrl) {
  auto s = read({"--sandbox-listen", "0.0.0.0:8471"});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("is not a loopback address"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("--sandbox-advertise"), std::string::npos);
  // The control: with the URL it is taken, and loopback needs none.
  auto ok = read({"--sandbox-listen", "0.0.0.0:8471", "--sandbox-advertise", "http://10.0.0.7:8471/"});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->advertise, "http://10.0.0.7:8471");
  EXPECT_TRUE(read({"--sandbox-listen", "[::1]:0"}).ok());
}

TEST(SandboxFlagsTest, BadValuesNameTheFlagAndTheForm) {
  for (auto [args, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--sandbox-slots", "-1"}, "--sandbox-slots must be a number from 0"},
           {{"--sandbox-slots", "many"}, "not \"many\""},
           {{"--sandbox-listen", "localhost:1"}, "--sandbox-listen must be ADDR:PORT with an IP address"},
           {{"--sandbox-listen", "127.0.0.1"}, "--sandbox-listen must be ADDR:PORT"},
           {{"--sandbox-listen", "127.0.0.1:70000"}, "--sandbox-listen must be ADDR:PORT"},
           {{"--sandbox-advertise", "http://h:1/path"}, "without a path"},
           {{"--sandbox-advertise", "ftp://h:1"}, "--sandbox-advertise must be http://HOST:PORT"}}) {
    auto s = read(args);
    ASSERT_FALSE(s.ok()) << args[0] << " " << args[1];
    EXPECT_NE(s.error().message.find(says), std::string::npos) << s.error().message;
    EXPECT_EQ(s.error().code, ErrorCode::usage);
  }
  EXPECT_EQ(read({"--sandbox-slots", "0"})->slots, 0u);  // hosting off is a valid choice
}

TEST(SandboxFlagsTest, WarmIsOffByDefaultAndBoundedBySlots) {
  EXPECT_EQ(read({})->warm, 0u);
  EXPECT_EQ(read({"--sandbox-warm", "4"})->warm, 4u);
  for (auto [args, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--sandbox-warm", "-1"}, "--sandbox-warm must be a number from 0"},
           {{"--sandbox-warm", "65"}, "to 64, not \"65\""},
           {{"--sandbox-warm", "2x"}, "not \"2x\""},
           {{"--sandbox-slots", "2", "--sandbox-warm", "3"}, "is more than --sandbox-slots 2"}}) {
    auto s = read(args);
    ASSERT_FALSE(s.ok()) << args[1];
    EXPECT_NE(s.error().message.find(says), std::string::npos) << s.error().message;
    EXPECT_EQ(s.error().code, ErrorCode::usage);
  }
}

}  // namespace
}  // namespace boxcar::cli
