#include "cli/step_limit_flags.h"

#include <gtest/gtest.h>

#include "cli/agent_limit_flags.h"

namespace boxcar::cli {
namespace {

Result<agent::StepLimits> limits_of(const std::vector<std::string>& args) {
  auto flags = parse_flags(args, with_step_limit_flags({}));
  EXPECT_TRUE(flags.ok()) << flags.error().message;
  return read_step_limits(*flags);
}

TEST(StepLimitFlags, NoFlagsGiveTheBuiltInDefaults) {
  auto l = limits_of({});
  ASSERT_TRUE(l.ok());
  agent::StepLimits built_in;
  EXPECT_EQ(l->default_memory, built_in.default_memory);
  EXPECT_EQ(l->default_pids, 4096u);
  EXPECT_EQ(l->max_preview_ttl, Millis(7'200'000));
}

TEST(StepLimitFlags, ValuesAreParsed) {
  auto l = limits_of({"--default-memory", "512MiB", "--default-pids", "100", "--default-cpus", "0.5",
                      "--default-tmp", "64MiB", "--max-memory", "1GiB", "--max-pids", "200", "--max-cpus",
                      "1", "--max-tmp", "128MiB", "--max-preview-ttl", "10m"});
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->default_memory, 512ull << 20);
  EXPECT_EQ(l->default_pids, 100u);
  EXPECT_EQ(l->default_cpus, 0.5);
  EXPECT_EQ(l->default_tmp, 64ull << 20);
  EXPECT_EQ(l->max_memory, 1ull << 30);
  EXPECT_EQ(l->max_pids, 200u);
  EXPECT_EQ(l->max_cpus, 1.0);
  EXPECT_EQ(l->max_tmp, 128ull << 20);
  EXPECT_EQ(l->max_preview_ttl, Millis(600'000));
}

TEST(StepLimitFlags, ALowerCeilingLowersTheBuiltInDefault) {
  auto l = limits_of({"--max-memory", "256MiB", "--max-pids", "64"});
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->default_memory, 256ull << 20);
  EXPECT_EQ(l->default_pids, 64u);
}

TEST(StepLimitFlags, BadValuesNameTheFlag) {
  auto expect_error = [](const std::vector<std::string>& args, const std::string& message) {
    auto l = limits_of(args);
    ASSERT_FALSE(l.ok()) << args[0];
    EXPECT_EQ(l.error().message, message);
  };
  expect_error({"--default-memory", "lots"}, "--default-memory must be a size of at least 4.0 MiB (like 4GiB), not \"lots\"");
  expect_error({"--max-memory", "1MiB"}, "--max-memory must be a size of at least 4.0 MiB (like 4GiB), not \"1MiB\"");
  expect_error({"--default-pids", "-5"}, "--default-pids must be a number from 8 to 4194304, not \"-5\"");
  expect_error({"--max-cpus", "0"}, "--max-cpus must be a number of CPUs from 0.01 to 1024 (like 2 or 0.5), not \"0\"");
  expect_error({"--max-preview-ttl", "forever"}, "--max-preview-ttl must be a duration of at least 1s (like 2h), not \"forever\"");
  expect_error({"--default-memory", "8GiB", "--max-memory", "4GiB"},
               "--default-memory 8.0 GiB is over --max-memory 4.0 GiB: lower it or raise --max-memory");
}

TEST(AgentLimitFlags, WorkspaceAndPreviewLimits) {
  auto parse = [](const std::vector<std::string>& args) {
    auto flags = parse_flags(args, agent_limit_flag_specs());
    EXPECT_TRUE(flags.ok());
    return read_agent_limits(*flags);
  };
  auto defaults = parse({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->workspace.bytes, 10ull << 30);
  EXPECT_EQ(defaults->workspace.inodes, 1'000'000u);
  EXPECT_EQ(defaults->max_previews, 0u);
  auto set = parse({"--max-workspace", "0", "--max-workspace-inodes", "5000", "--max-previews", "3"});
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->workspace.bytes, 0u);
  EXPECT_EQ(set->workspace.inodes, 5000u);
  EXPECT_EQ(set->max_previews, 3u);
  auto bad = parse({"--max-workspace", "12"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            "--max-workspace must be a size of at least 1MiB (like 10GiB), or 0 for no limit, not \"12\"");
  EXPECT_FALSE(parse({"--max-workspace-inodes", "ten"}).ok());
  EXPECT_FALSE(parse({"--max-previews", "0"}).ok());
}

TEST(StepLimitFlags, MaxImageWrite) {
  auto parse = [](const std::vector<std::string>& args) {
    auto flags = parse_flags(args, step_limit_flag_specs());
    EXPECT_TRUE(flags.ok());
    return read_max_image_write(*flags);
  };
  auto absent = parse({});
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());  // the executor's default (10GiB)
  auto set = parse({"--max-image-write", "2GiB"});
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(**set, 2ull << 30);
  auto off = parse({"--max-image-write", "0"});
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(**off, 0u);
  for (const char* bad : {"1MiB", "lots", "-5GiB", ""}) {
    auto r = parse({"--max-image-write", bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().message, std::string("--max-image-write must be a size of at least 16.0 MiB (like 10GiB), or "
                                             "0 for no limit, not \"") + bad + "\"");
  }
}

}  // namespace
}  // namespace boxcar::cli
