// Parse + validate + expand + plan of large pipelines, the pure front half of every run.
#include <benchmark/benchmark.h>

#include <string>

#include "pipeline/load.h"
#include "pipeline/plan.h"

namespace {

// n steps: every tenth starts a new chain; the rest need their predecessor (a realistic mix of
// fan-out and chains), plus one final step that needs every chain head.
std::string make_pipeline(int n) {
  std::string s = "version = 1\nname = \"big\"\n[env]\nCI = \"true\"\n";
  for (int i = 0; i < n; ++i) {
    s += "[[step]]\nname = \"step-" + std::to_string(i) + "\"\nrun = \"echo " +
         std::to_string(i) + "\"\ntimeout = \"10m\"\n";
    if (i % 10 != 0) s += "needs = [\"step-" + std::to_string(i - 1) + "\"]\n";
  }
  return s;
}

void BM_ParseValidatePlan(benchmark::State& state) {
  std::string text = make_pipeline(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto loaded = boxcar::pipeline::parse_pipeline(text, "big.toml");
    if (!loaded.errors.empty()) state.SkipWithError("pipeline did not validate");
    auto expanded = boxcar::pipeline::expand(*loaded.pipeline);
    boxcar::pipeline::Plan plan(expanded, {});
    benchmark::DoNotOptimize(plan.ready());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ParseValidatePlan)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

// Driving the whole plan to completion: every step started and finished in order.
void BM_PlanDriveToCompletion(benchmark::State& state) {
  std::string text = make_pipeline(static_cast<int>(state.range(0)));
  auto loaded = boxcar::pipeline::parse_pipeline(text, "big.toml");
  auto expanded = boxcar::pipeline::expand(*loaded.pipeline);
  for (auto _ : state) {
    boxcar::pipeline::Plan plan(expanded, {});
    while (!plan.done()) {
      for (size_t i : plan.ready()) {
        plan.start(i);
        plan.finish(i, boxcar::pipeline::StepState::success);
      }
    }
  }
}
BENCHMARK(BM_PlanDriveToCompletion)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
