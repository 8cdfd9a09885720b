#include "cli/sandbox_args.h"

#include <gtest/gtest.h>

#include "cli/commands.h"

namespace boxcar::cli {
namespace {

TEST(SandboxArgs, TheCommandIsWhatFollowsTheSeparatorOrTheShellLine) {
  auto split = split_at_separator({"abcdefgh2345", "--cwd", "app", "--", "ls", "--", "-l"});
  EXPECT_EQ(split.before, (std::vector<std::string>{"abcdefgh2345", "--cwd", "app"}));
  EXPECT_EQ(split.command, (std::vector<std::string>{"ls", "--", "-l"}));
  auto argv = command_args(split, std::nullopt);
  ASSERT_TRUE(argv.ok());
  EXPECT_EQ(argv->argv.size(), 3u);

  auto sh = command_args(split_at_separator({"id"}), std::string("make | tail"));
  ASSERT_TRUE(sh.ok());
  EXPECT_EQ(sh->shell, "make | tail");

  EXPECT_FALSE(command_args(split, std::string("x")).ok()) << "both forms at once";
  EXPECT_FALSE(command_args(split_at_separator({"id"}), std::nullopt).ok()) << "no command";
  EXPECT_FALSE(command_args(split_at_separator({"id", "--"}), std::nullopt).ok()) << "empty argv";
  EXPECT_FALSE(command_args(split_at_separator({"id"}), std::string()).ok()) << "empty --sh";
}

TEST(SandboxArgs, CopyOperandsNameASandboxOnlyByItsId) {
  auto remote = parse_copy_operand("abcdefgh2345:/workspace/a.py");
  EXPECT_EQ(remote.sandbox, "abcdefgh2345");
  EXPECT_EQ(remote.path, "/workspace/a.py");
  // Not an id before the colon: a local path.
  EXPECT_EQ(parse_copy_operand("./abcdefgh2345:/x").sandbox, "");
  EXPECT_EQ(parse_copy_operand("C:/x").sandbox, "");
  EXPECT_EQ(parse_copy_operand("ABCDEFGH2345:/x").sandbox, "");
  EXPECT_EQ(parse_copy_operand("notes:today.txt").path, "notes:today.txt");
}

TEST(SandboxArgs, CopyNeedsOneSideInASandboxAndKeepsTheFileName) {
  auto up = plan_copy("./dir/a.py", "abcdefgh2345:/workspace/");
  ASSERT_TRUE(up.ok());
  EXPECT_TRUE(up->upload);
  EXPECT_EQ(up->to.path, "/workspace/a.py");
  auto bare = plan_copy("a.py", "abcdefgh2345:");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->to.path, "/workspace/a.py");
  auto down = plan_copy("abcdefgh2345:/workspace/out.png", ".");
  ASSERT_TRUE(down.ok());
  EXPECT_FALSE(down->upload);
  EXPECT_EQ(down->to.path, "./out.png");
  auto named = plan_copy("abcdefgh2345:/tmp/x", "y");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->to.path, "y");

  EXPECT_FALSE(plan_copy("a", "b").ok());
  EXPECT_FALSE(plan_copy("abcdefgh2345:/a", "abcdefgh2346:/b").ok());
  EXPECT_FALSE(plan_copy("abcdefgh2345:/workspace/", ".").ok()) << "a directory as the source";
}

TEST(SandboxArgs, PairsNeedANameAndAnEqualsSign) {
  auto ok = parse_pairs({"K=V", "E=", "X=a=b"}, "--env");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->at("X"), "a=b");
  EXPECT_EQ(ok->at("E"), "");
  auto bad = parse_pairs({"K"}, "--env");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("NAME=VALUE"), std::string::npos);
  EXPECT_FALSE(parse_pairs({"=V"}, "--label").ok());
}

// The verbs' own checks, before anything is sent (no server is running: port 1).
TEST(SandboxCommand, BadUsageExits2BeforeAnyRequest) {
  testing::internal::CaptureStderr();
  EXPECT_EQ(cmd_sandbox({"exce", "abcdefgh2345"}), kExitUsage);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("did you mean \"exec\"?"), std::string::npos);
  testing::internal::CaptureStderr();
  EXPECT_EQ(cmd_sandbox({"exec", "abcdefgh2345", "--server", "http://127.0.0.1:1"}), kExitUsage);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("no command"), std::string::npos);
  testing::internal::CaptureStderr();
  EXPECT_EQ(cmd_sandbox({"create", "--ttl", "forever", "--server", "http://127.0.0.1:1"}), kExitUsage);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("--ttl"), std::string::npos);
  testing::internal::CaptureStderr();
  EXPECT_EQ(cmd_sandbox({"rm", "-r", "abcdefgh2345", "--server", "http://127.0.0.1:1"}), kExitUsage);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("deletes the whole sandbox"), std::string::npos);
  testing::internal::CaptureStderr();
  EXPECT_EQ(cmd_sandbox({"wait", "abcdefgh2345", "p1", "--server", "http://127.0.0.1:1"}), kExitUsage);
  testing::internal::GetCapturedStderr();
}

TEST(SandboxCommand, AnUnreachableServerExits3) {
  testing::internal::CaptureStderr();
  EXPECT_EQ(cmd_sandbox({"list", "--server", "http://127.0.0.1:1", "--token", "t"}), kExitInfra);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("cannot reach the boxcar server"), std::string::npos);
}

}  // namespace
}  // namespace boxcar::cli
