// The log pipeline alone: masking, line splitting and the log file, no process involved.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <string>

#include "agent/run_observer.h"
#include "agent/step_output.h"

namespace {

class CountingObserver : public boxcar::agent::RunObserver {
 public:
  void notice(std::string_view) override {}
  void step_started(size_t, std::string_view, int) override {}
  void step_line(size_t, std::string_view, boxcar::agent::Timestamp, std::string_view line,
                 bool) override {
    bytes += line.size() + 1;
  }
  void step_finished(size_t, const boxcar::agent::StepSummary&) override {}
  void artifact(size_t, std::string_view, std::string_view, uint64_t) override {}
  void pipeline_finished(bool, const std::vector<boxcar::agent::StepSummary>&,
                         boxcar::Millis) override {}
  uint64_t bytes = 0;
};

// 64 KiB chunks as a pipe delivers them, of `yes` output ("y\n": the worst case, 2-byte lines)
// or of 100-byte lines; with and without secrets to mask.
void BM_StepOutput(benchmark::State& state) {
  const bool short_lines = state.range(0) == 0;
  const bool secrets = state.range(1) != 0;
  std::string chunk;
  while (chunk.size() < 65536) {
    chunk += short_lines ? std::string("y\n") : std::string(99, 'x') + "\n";
  }
  chunk.resize(65536);
  char path[] = "/tmp/boxcar-log-bench-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  CountingObserver obs;
  boxcar::agent::StepOutputOptions o;
  o.name = "bench";
  o.log_file = path;
  o.limit = ~0ull;
  if (secrets) o.secrets = {"hunter2-secret", "another-token-value"};
  {
    boxcar::agent::StepOutput out(o, obs);
    for (auto _ : state) out.write(boxcar::executors::OutputStream::out, chunk);
    out.close();
  }
  unlink(path);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(chunk.size()));
}
BENCHMARK(BM_StepOutput)
    ->ArgNames({"long_lines", "secrets"})
    ->Args({0, 0})->Args({0, 1})->Args({1, 0})->Args({1, 1});

}  // namespace

BENCHMARK_MAIN();
