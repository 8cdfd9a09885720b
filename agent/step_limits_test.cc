#include "agent/step_limits.h"

#include <gtest/gtest.h>

#include "pipeline/load.h"

namespace boxcar::agent {
namespace {

pipeline::ExpandedPipeline expanded(const std::string& text) {
  auto loaded = pipeline::parse_pipeline(text, ".boxcar.toml");
  EXPECT_TRUE(loaded.errors.empty()) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
  return loaded.pipeline ? pipeline::expand(*loaded.pipeline) : pipeline::ExpandedPipeline{};
}

TEST(StepLimits, AStepWithoutResourcesGetsTheDefaults) {
  auto p = expanded("version = 1\n[[step]]\nname = \"plain\"\nrun = \"true\"\n");
  StepLimits limits;
  executors::SandboxSpec spec;
  spec.name = "plain";
  ASSERT_TRUE(apply_step_limits(p, p.steps[0], limits, spec).ok());
  // Out of the box: 4 GiB (or the machine, if smaller), 4096 pids, the machine's CPUs, 1 GiB
  // /tmp, 64 MiB /dev/shm: every step is limited, none is left unbounded.
  EXPECT_EQ(spec.memory_bytes, std::min<uint64_t>(4ull << 30, machine_memory()));
  EXPECT_EQ(spec.pids, 4096u);
  EXPECT_EQ(spec.cpus, machine_cpus());
  EXPECT_EQ(spec.tmp_bytes, 1ull << 30);
  EXPECT_EQ(spec.shm_bytes, 64ull << 20);
  EXPECT_TRUE(executors::validate(spec).ok());
}

TEST(StepLimits, AStepsOwnResourcesWinUnderTheCeilings) {
  auto p = expanded(
      "version = 1\n[[step]]\nname = \"big\"\nrun = \"true\"\n"
      "resources = { memory = \"512MiB\", pids = 100, cpus = 0.5, tmp = \"64MiB\" }\n");
  StepLimits limits;
  limits.default_memory = 64ull << 20;
  executors::SandboxSpec spec;
  ASSERT_TRUE(apply_step_limits(p, p.steps[0], limits, spec).ok());
  EXPECT_EQ(spec.memory_bytes, 512ull << 20);
  EXPECT_EQ(spec.pids, 100u);
  EXPECT_EQ(spec.cpus, 0.5);
  EXPECT_EQ(spec.tmp_bytes, 64ull << 20);
}

TEST(StepLimits, AskingPastACeilingNamesTheFileStepKeyAndCeiling) {
  auto p = expanded(
      "version = 1\n"
      "[[step]]\nname = \"ok\"\nrun = \"true\"\nresources = { memory = \"1GiB\" }\n"
      "[[step]]\nname = \"greedy\"\nrun = \"true\"\nmatrix = { n = [\"1\", \"2\"] }\n"
      "resources = { memory = \"8GiB\", pids = 100000 }\n");
  StepLimits limits;
  limits.max_memory = 4ull << 30;
  auto errors = step_limit_errors(p, limits);
  ASSERT_EQ(errors.size(), 1u) << "once for both cells of the matrix";
  EXPECT_EQ(errors[0].message,
            ".boxcar.toml:6:1: error: step \"greedy\": resources.memory = 8.0 GiB is over the ceiling of 4.0 GiB: "
            "ask for at most 4.0 GiB");
  EXPECT_EQ(errors[0].code, ErrorCode::limit_exceeded);
  EXPECT_EQ(errors[0].subject, "max_memory") << "the CLI names the flag from it";
  limits.max_memory = 16ull << 30;
  errors = step_limit_errors(p, limits);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("resources.pids = 100000 is over the ceiling of 32768:"), std::string::npos)
      << errors[0].message;
  EXPECT_EQ(errors[0].subject, "max_pids");
  limits.max_pids = 100000;
  EXPECT_TRUE(step_limit_errors(p, limits).empty());
  limits.max_cpus = 0.25;
  EXPECT_TRUE(step_limit_errors(p, limits).empty()) << "a step that names no cpus gets the default";
}

TEST(StepLimits, PreviewTtlIsCutToItsCeilingWithANotice) {
  auto p = expanded(
      "version = 1\n[[step]]\nname = \"web\"\nrun = \"true\"\npreview_ttl = \"720h\"\n"
      "[[step.expose]]\nport = 8080\n"
      "[[step]]\nname = \"short\"\nrun = \"true\"\npreview_ttl = \"5m\"\n[[step.expose]]\nport = 8081\n");
  StepLimits limits;
  PreviewTtl cut = preview_ttl_of(p.steps[0], limits);
  EXPECT_EQ(cut.ttl, Millis(2 * 3'600'000));
  EXPECT_NE(cut.notice.find("preview_ttl 720h00m is over the ceiling of 2h00m: its previews close after 2h00m"),
            std::string::npos)
      << cut.notice;
  PreviewTtl kept = preview_ttl_of(p.steps[1], limits);
  EXPECT_EQ(kept.ttl, Millis(5 * 60'000));
  EXPECT_EQ(kept.notice, "");
}

}  // namespace
}  // namespace boxcar::agent
