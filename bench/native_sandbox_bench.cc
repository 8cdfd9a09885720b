// Sandbox start + `true` + teardown with the native executor, beside its baseline measured in
// the same run: a bare fork + exec + wait of the same binary (DESIGN.md section 8: at most 2x).
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <boost/asio/io_context.hpp>

#include "executors/native/native_executor.h"

namespace {

using namespace boxcar::executors;

extern "C" char** environ;

void BM_ForkExecTrue(benchmark::State& state) {
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  for (auto _ : state) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execve("/bin/true", argv, environ);
      ::_exit(127);
    }
    int status;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("true failed");
  }
}
BENCHMARK(BM_ForkExecTrue)->Threads(1)->Threads(2)->UseRealTime();

// prewarm (the default): each step takes a sandbox set up while the previous one ran.
// cold: every sandbox is set up on the critical path.
void run_native(benchmark::State& state, bool prewarm) {
  if (auto ok = native_available(); !ok) {
    state.SkipWithError(ok.error().message.c_str());
    return;
  }
  boost::asio::io_context io;
  char tmpl[] = "/tmp/boxcar-bench-XXXXXX";
  std::filesystem::path workspace = ::mkdtemp(tmpl);
  NativeOptions options;
  options.prewarm = prewarm;
  auto executor = make_native_executor(io, options);
  auto job = executor->prepare(JobSpec{"bench", workspace});
  if (!job) {
    state.SkipWithError(job.error().message.c_str());
    return;
  }
  SandboxSpec spec;
  spec.name = "bench";
  for (auto _ : state) {
    auto sandbox = (*job)->start(spec);
    if (!sandbox) {
      state.SkipWithError(sandbox.error().message.c_str());
      break;
    }
    bool done = false;
    Outcome outcome;
    auto st = (*sandbox)->exec(ExecRequest{{"/bin/true"}, {}, "."},
                               ExecHandlers{nullptr, [&](const Outcome& o) {
                                              outcome = o;
                                              done = true;
                                            }});
    if (!st) {
      state.SkipWithError(st.error().message.c_str());
      break;
    }
    io.restart();
    while (!done) io.run_one();
    if (!outcome.ok()) {
      state.SkipWithError(describe(outcome).c_str());
      break;
    }
    (*sandbox)->destroy();
    sandbox->reset();
    io.restart();
    io.poll();  // teardown finishes asynchronously (reap pid 1, remove cgroups)
  }
  (*job)->destroy();
  while (io.run_one_for(std::chrono::milliseconds(100))) {
  }
  std::filesystem::remove_all(workspace);
}

void BM_NativeSandboxTrue(benchmark::State& state) { run_native(state, true); }
BENCHMARK(BM_NativeSandboxTrue)->Threads(1)->Threads(2)->UseRealTime();

void BM_NativeSandboxTrueCold(benchmark::State& state) { run_native(state, false); }
BENCHMARK(BM_NativeSandboxTrueCold)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
