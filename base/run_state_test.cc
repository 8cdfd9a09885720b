#include "base/run_state.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(RunState, EveryNameParsesBackToItsState) {
  for (const char* n : kJobStates) EXPECT_STREQ(to_string(parse_job_state(n).value()), n);
  for (const char* n : kStepStates) EXPECT_STREQ(to_string(parse_step_state(n).value()), n);
  EXPECT_EQ(parse_job_state("queued"), JobState::queued);
  EXPECT_EQ(parse_step_state("oom"), StepState::oom);
}

TEST(RunState, UnknownAndMiscasedNamesAreRefused) {
  EXPECT_FALSE(parse_job_state("pending"));  // a step state, not a job state
  EXPECT_FALSE(parse_step_state("queued"));
  EXPECT_FALSE(parse_job_state("Success"));
  EXPECT_FALSE(parse_job_state(""));
}

TEST(RunState, FinalJobStates) {
  EXPECT_EQ(job_state_names(true), "success|failed|cancelled|error|skipped");
  EXPECT_EQ(job_state_names(), "queued|running|success|failed|cancelled|error|skipped");
  EXPECT_EQ(step_state_names(), "pending|running|success|failed|skipped|cancelled|timeout|oom|error");
  EXPECT_FALSE(is_final_job_state("queued"));
  EXPECT_FALSE(is_final_job_state("running"));
  EXPECT_FALSE(is_final_job_state("nonsense"));
  EXPECT_TRUE(is_final_job_state("skipped"));
  EXPECT_TRUE(is_final(JobState::error));
}

}  // namespace
}  // namespace boxcar
