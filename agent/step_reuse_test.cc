// reused_steps: which steps a re-run of failed steps runs again (pure logic).
#include "agent/step_reuse.h"

#include <gtest/gtest.h>

namespace boxcar::agent {
namespace {

pipeline::ConcreteStep step(const std::string& name, std::vector<size_t> needs = {}, bool expose = false) {
  pipeline::ConcreteStep cs;
  cs.name = cs.base_name = cs.step.name = name;
  cs.needs = std::move(needs);
  if (expose) cs.step.expose.emplace_back();
  return cs;
}

TEST(ReusedSteps, FailedStepsAndWhatNeedsThemRunTheRestIsReused) {
  pipeline::ExpandedPipeline p;
  // lint; build; test <- build; package <- test; docs <- build; new <- lint (not in the old job)
  p.steps = {step("lint"), step("build"), step("test", {1}), step("package", {2}), step("docs", {1}),
             step("new", {0})};
  std::map<std::string, std::string> previous{{"lint", "success"}, {"build", "success"},
                                              {"test", "failed"},  {"package", "skipped"},
                                              {"docs", "success"}};
  EXPECT_EQ(reused_steps(p, previous), (std::vector<bool>{true, true, false, false, true, false}));
  // Every step succeeded: all reused (the server refuses such a re-run; the rule holds anyway).
  previous["test"] = previous["package"] = "success";
  previous["new"] = "success";
  EXPECT_EQ(reused_steps(p, previous), std::vector<bool>(6, true));
  // A failed first step re-runs everything that needs it, transitively.
  previous["build"] = "timeout";
  EXPECT_EQ(reused_steps(p, previous), (std::vector<bool>{true, false, false, false, false, true}));
}

TEST(ReusedSteps, AServiceStepThatAReRunStepNeedsRunsAgain) {
  pipeline::ExpandedPipeline p;
  // db (exposes) <- api (exposes, needs db) <- e2e; cleanup (alone)
  p.steps = {step("db", {}, true), step("api", {0}, true), step("e2e", {1}), step("cleanup")};
  std::map<std::string, std::string> previous{
      {"db", "success"}, {"api", "success"}, {"e2e", "failed"}, {"cleanup", "success"}};
  EXPECT_EQ(reused_steps(p, previous), (std::vector<bool>{false, false, false, true}));
}

}  // namespace
}  // namespace boxcar::agent
