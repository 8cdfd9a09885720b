#include "executors/spec.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <limits>

#include "executors/outcome.h"

namespace boxcar::executors {
namespace {

SandboxSpec valid_spec() {
  SandboxSpec spec;
  spec.name = "build";
  return spec;
}

TEST(SpecTest, DefaultsAreValid) { EXPECT_TRUE(validate(valid_spec()).ok()); }

TEST(SpecTest, MatrixNameIsValid) {
  SandboxSpec spec = valid_spec();
  spec.name = "test (cc=gcc, opt=O2)";
  EXPECT_TRUE(validate(spec).ok());
}

TEST(SpecTest, LimitsAtTheirMinimumAreValid) {
  SandboxSpec spec = valid_spec();
  spec.memory_bytes = 4ull << 20;
  spec.cpus = 0.01;
  spec.pids = 8;
  spec.tmp_bytes = 1ull << 20;
  EXPECT_TRUE(validate(spec).ok());
  spec.cpus = 1024;
  EXPECT_TRUE(validate(spec).ok());
}

TEST(SpecTest, EmptyNameIsRejected) {
  SandboxSpec spec = valid_spec();
  spec.name = "";
  EXPECT_FALSE(validate(spec).ok());
}

TEST(SpecTest, ControlCharacterInNameIsRejected) {
  SandboxSpec spec = valid_spec();
  spec.name = "a\nb";
  EXPECT_FALSE(validate(spec).ok());
}

TEST(SpecTest, OverlongNameIsRejected) {
  SandboxSpec spec = valid_spec();
  spec.name = std::string(257, 'a');
  EXPECT_FALSE(validate(spec).ok());
}

TEST(SpecTest, EmptyOrSpacedImageIsRejected) {
  SandboxSpec spec = valid_spec();
  spec.image = "";
  EXPECT_FALSE(validate(spec).ok());
  spec.image = "debian 12";
  EXPECT_FALSE(validate(spec).ok());
}

TEST(SpecTest, SmallMemoryIsRejectedWithTheStepName) {
  SandboxSpec spec = valid_spec();
  spec.memory_bytes = (4ull << 20) - 1;
  Status s = validate(spec);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("\"build\""), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("memory"), std::string::npos) << s.error().message;
}

TEST(SpecTest, CpusOutOfRangeAreRejected) {
  SandboxSpec spec = valid_spec();
  for (double cpus : {0.0, 0.009, -1.0, 1024.5, std::numeric_limits<double>::quiet_NaN(),
                      std::numeric_limits<double>::infinity()}) {
    spec.cpus = cpus;
    EXPECT_FALSE(validate(spec).ok()) << cpus;
  }
}

TEST(SpecTest, FewPidsAreRejected) {
  SandboxSpec spec = valid_spec();
  spec.pids = 7;
  EXPECT_FALSE(validate(spec).ok());
}

TEST(SpecTest, SmallTmpIsRejected) {
  SandboxSpec spec = valid_spec();
  spec.tmp_bytes = (1ull << 20) - 1;
  EXPECT_FALSE(validate(spec).ok());
}

TEST(SpecTest, SmallShmIsRejected) {
  SandboxSpec spec = valid_spec();
  EXPECT_EQ(spec.shm_bytes, 64ull << 20);  // Docker's default
  spec.shm_bytes = (1ull << 20) - 1;
  EXPECT_FALSE(validate(spec).ok());
  spec.shm_bytes = 1ull << 20;
  EXPECT_TRUE(validate(spec).ok());
}

TEST(SpecTest, UnknownNetworkModeIsRejected) {
  SandboxSpec spec = valid_spec();
  spec.network = static_cast<NetworkMode>(42);
  EXPECT_FALSE(validate(spec).ok());
}

TEST(OutcomeTest, KindNames) {
  EXPECT_STREQ(to_string(Outcome::Kind::ok), "ok");
  EXPECT_STREQ(to_string(Outcome::Kind::failed), "failed");
  EXPECT_STREQ(to_string(Outcome::Kind::timeout), "timeout");
  EXPECT_STREQ(to_string(Outcome::Kind::oom), "oom");
  EXPECT_STREQ(to_string(Outcome::Kind::signaled), "signaled");
  EXPECT_STREQ(to_string(Outcome::Kind::cancelled), "cancelled");
  EXPECT_STREQ(to_string(Outcome::Kind::setup_error), "setup_error");
}

TEST(OutcomeTest, Describe) {
  EXPECT_EQ(describe(Outcome::exited(2)), "exit code 2");
  EXPECT_EQ(describe(Outcome::killed_by(9)), "killed by SIGKILL");
  EXPECT_EQ(describe(Outcome::of(Outcome::Kind::timeout)), "timed out");
  EXPECT_EQ(describe(Outcome::of(Outcome::Kind::oom)), "out of memory");
  EXPECT_EQ(describe(Outcome::of(Outcome::Kind::cancelled)), "cancelled");
  EXPECT_EQ(describe(Outcome::setup("mount /proc", EPERM, "")),
            "setup failed: mount /proc: Operation not permitted");
  EXPECT_EQ(describe(Outcome::setup("cgroup memory", EACCES, "memory.max is read-only")),
            "setup failed: cgroup memory: Permission denied (memory.max is read-only)");
}

TEST(OutcomeTest, ExitedZeroIsOk) {
  EXPECT_TRUE(Outcome::exited(0).ok());
  EXPECT_EQ(Outcome::exited(3).kind, Outcome::Kind::failed);
  EXPECT_EQ(Outcome::exited(3).exit_code, 3);
}

}  // namespace
}  // namespace boxcar::executors
