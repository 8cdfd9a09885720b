#include "cli/image_flags.h"

#include <gtest/gtest.h>

#include <fstream>

#include "testing/scratch_dir.h"

namespace boxcar::cli {
namespace {

Result<ImageSettings> read(const std::vector<std::string>& args) {
  auto flags = parse_flags(args, image_flag_specs());
  EXPECT_TRUE(flags.ok()) << flags.error().message;
  return read_image_flags(*flags, "/default/cache");
}

TEST(ImageFlagsTest, DefaultsProtectASharedMachine) {
  auto s = read({});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->store.dir, "/default/cache");
  EXPECT_EQ(s->store.max_bytes, 20ull << 30);
  EXPECT_TRUE(s->registry.insecure.empty());  // https only unless a registry is named
  EXPECT_TRUE(s->registry.auth_file.empty());
  EXPECT_EQ(s->pull_timeout, Millis(30 * 60'000));
}

TEST(ImageFlagsTest, ValuesAreTaken) {
  testing::ScratchDir dir;
  std::ofstream(dir.dir / "auth.json") << "{}";
  auto s = read({"--image-cache", "/c", "--image-cache-size", "1GiB", "--insecure-registry", "127.0.0.1:5000",
                 "--insecure-registry", "reg.local", "--registry-auth", (dir.dir / "auth.json").string()});
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->store.dir, "/c");
  EXPECT_EQ(s->store.max_bytes, 1ull << 30);
  EXPECT_EQ(s->registry.insecure, (std::vector<std::string>{"127.0.0.1:5000", "reg.local"}));
  EXPECT_EQ(s->registry.auth_file, dir.dir / "auth.json");
  auto t = read({"--image-pull-timeout", "5m"});
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->pull_timeout, Millis(5 * 60'000));
}

TEST(ImageFlagsTest, BadValuesNameTheFlag) {
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--image-cache-size", "1MiB"},
           {"--image-cache-size", "lots"},
           {"--insecure-registry", "http://reg:5000"},
           {"--insecure-registry", "reg:5000/path"},
           {"--insecure-registry", "reg:99999"},
           {"--insecure-registry", ":5000"},
           {"--registry-auth", "/nonexistent/auth.json"},
           {"--image-pull-timeout", "10"},
           {"--image-pull-timeout", "0s"},
           {"--image-pull-timeout", "soon"},
       }) {
    auto s = read({flag, value});
    ASSERT_FALSE(s.ok()) << flag << " " << value;
    EXPECT_EQ(s.error().code, ErrorCode::usage);
    EXPECT_NE(s.error().message.find(flag), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find(value), std::string::npos) << s.error().message;
  }
}

TEST(ImageFlagsTest, DefaultCacheFollowsXdg) {
  const char* old_home = std::getenv("HOME");
  std::string home = old_home ? old_home : "";
  ::setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(default_image_cache(), "/xdg/boxcar/images");
  ::unsetenv("XDG_CACHE_HOME");
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(default_image_cache(), "/home/u/.cache/boxcar/images");
  if (old_home) ::setenv("HOME", home.c_str(), 1);
  else ::unsetenv("HOME");
}

}  // namespace
}  // namespace boxcar::cli
