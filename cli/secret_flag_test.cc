#include "cli/secret_flag.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

namespace boxcar::cli {
namespace {

const SecretFlag kToken{"--token", "BOXCAR_TEST_SECRET_FLAG"};

ParsedFlags parse(const std::vector<std::string>& args) {
  auto flags = parse_flags(args, secret_flag_specs(kToken));
  EXPECT_TRUE(flags.ok()) << flags.error().message;
  return flags.ok() ? *flags : ParsedFlags{};
}

std::string temp_file(const std::string& content) {
  char name[] = "/tmp/boxcar-secret-XXXXXX";
  int fd = ::mkstemp(name);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(name, std::ios::binary) << content;
  return name;
}

TEST(SecretFlag, TheFlagThenTheFileThenTheEnvironment) {
  ::setenv(kToken.env.c_str(), "from-env", 1);
  EXPECT_EQ(read_secret(parse({"--token", "from-flag"}), kToken, "t")->value(), "from-flag");
  std::string file = temp_file("from-file\r\n\n");
  EXPECT_EQ(read_secret(parse({"--token-file", file}), kToken, "t")->value(), "from-file");
  EXPECT_EQ(read_secret(parse({}), kToken, "t")->value(), "from-env");
  ::setenv(kToken.env.c_str(), "", 1);
  EXPECT_FALSE(read_secret(parse({}), kToken, "t")->has_value());
  ::unsetenv(kToken.env.c_str());
  std::remove(file.c_str());
}

TEST(SecretFlag, TheCommandLineFormWarns) {
  ::testing::internal::CaptureStderr();
  auto v = read_secret(parse({"--token=abc"}), kToken, "agent");
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(v.ok());
  EXPECT_NE(err.find("boxcar agent: warning: --token on the command line is visible to every "
                     "local user in ps; use BOXCAR_TEST_SECRET_FLAG or --token-file"),
            std::string::npos)
      << err;
  EXPECT_EQ(err.find("abc"), std::string::npos);  // the warning does not repeat the secret
}

TEST(SecretFlag, AValueThatHoldsNoSecretDoesNotWarn) {
  SecretFlag db{"--db", "BOXCAR_TEST_DB", [](const std::string& v) { return v.find('@') != std::string::npos; }};
  auto flags = parse_flags({"--db", "sqlite:/x.db"}, secret_flag_specs(db));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(read_secret(*flags, db, "serve")->value(), "sqlite:/x.db");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(SecretFlag, BadFilesAndBothFormsAreErrors) {
  std::string file = temp_file("x");
  auto both = read_secret(parse({"--token", "a", "--token-file", file}), kToken, "t");
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error().message, "give --token or --token-file, not both");
  auto missing = read_secret(parse({"--token-file", "/nonexistent/secret"}), kToken, "t");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("--token-file: cannot read /nonexistent/secret"), std::string::npos);
  std::string empty = temp_file("\n");
  auto blank = read_secret(parse({"--token-file", empty}), kToken, "t");
  ASSERT_FALSE(blank.ok());
  EXPECT_NE(blank.error().message.find("is empty"), std::string::npos);
  std::string big = temp_file(std::string(70000, 'x'));
  EXPECT_FALSE(read_secret(parse({"--token-file", big}), kToken, "t").ok());
  for (const auto& f : {file, empty, big}) std::remove(f.c_str());
}

}  // namespace
}  // namespace boxcar::cli
