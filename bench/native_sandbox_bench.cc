// Sandbox start + `true` + teardown with the native executor, beside its baselines measured in
// the same run: a bare fork + exec + wait of the same binary (DESIGN.md section 8: at most 2x);
// and the same in an image (a busybox layer: SandboxSpec::layers) beside image = "host" (goal:
// within 1.5x), `runc run` of the same rootfs (goal: >= 3x faster) and --executor oci.
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <boost/asio/io_context.hpp>

#include "executors/native/native_executor.h"
#include "executors/oci/oci_executor.h"

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

// A busybox image, unpacked as the layer store would leave it: one layer directory, owned by
// the sandboxes' root (id_base), plus an OCI bundle of the same directory for `runc run`.
struct BusyboxImage {
  std::filesystem::path dir;
  std::filesystem::path layer;
  std::filesystem::path bundle;

  BusyboxImage() {
    namespace fs = std::filesystem;
    char tmpl[] = "/var/tmp/boxcar-bench-image-XXXXXX";
    dir = ::mkdtemp(tmpl);
    layer = dir / "layer";
    for (const char* d : {"bin", "etc", "tmp", "proc", "dev", "workspace"}) fs::create_directories(layer / d);
    fs::copy_file("/bin/busybox", layer / "bin/busybox");
    for (const char* applet : {"sh", "true"}) fs::create_symlink("busybox", layer / "bin" / applet);
    std::ofstream(layer / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n";
    std::ofstream(layer / "etc/group") << "root:x:0:\n";
    for (auto& e : fs::recursive_directory_iterator(layer)) ::lchown(e.path().c_str(), 100000, 100000);
    ::lchown(layer.c_str(), 100000, 100000);
    // runc's bundle: its rootfs is the same directory (read-only there, as a lower is).
    bundle = dir / "bundle";
    fs::create_directories(bundle);
    std::string cmd = "cd " + bundle.string() + " && runc spec && sed -i 's/\"terminal\": true/\"terminal\": false/; "
                      "s/\"sh\"/\"true\"/; s|\"path\": \"rootfs\"|\"path\": \"" + layer.string() + "\"|' config.json";
    if (std::system(cmd.c_str()) != 0) bundle.clear();
  }
  ~BusyboxImage() { std::filesystem::remove_all(dir); }
};

BusyboxImage& busybox_image() {
  static BusyboxImage image;
  return image;
}

// Sandbox start + `true` + destroy, `spec` for each. prewarm (the native default): each step
// takes a sandbox set up while the previous one ran; cold: every sandbox is set up on the
// critical path.
// `layered`: each sandbox's /workspace is a fresh layer of its own over the workspace (what
// every step of an isolated run gets, agent/workspace_layers.h), made and removed in the loop.
// `idle`: between two sandboxes, untimed, the agent idles 50 ms (the refill is ready, the layer
// removed): the latency of one step when the machine has a moment between steps (a chain of
// dependent steps), rather than the throughput of back-to-back ones.
void run_sandboxes(benchmark::State& state, Executor& executor, boost::asio::io_context& io, const SandboxSpec& base,
                   const std::string& program, bool layered = false, bool idle = false) {
  SandboxSpec spec = base;
  char tmpl[] = "/tmp/boxcar-bench-XXXXXX";
  std::filesystem::path workspace = ::mkdtemp(tmpl);
  auto job = executor.prepare(JobSpec{"bench", workspace});
  if (!job) {
    state.SkipWithError(job.error().message.c_str());
    return;
  }
  size_t n = 0;
  for (auto _ : state) {
    std::filesystem::path layer = workspace.string() + ".layer-" + std::to_string(++n);
    if (layered) {
      std::filesystem::create_directories(layer);
      spec.layered = {LayeredDir{"/workspace", layer, {workspace}}};
    }
    auto sandbox = (*job)->start(spec);
    if (!sandbox) {
      state.SkipWithError(sandbox.error().message.c_str());
      break;
    }
    bool done = false;
    Outcome outcome;
    auto st = (*sandbox)->exec(ExecRequest{{program}, {}, "."},
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
    if (idle) state.PauseTiming();
    if (layered) std::filesystem::remove_all(layer);
    if (idle) {
      io.restart();
      io.run_for(std::chrono::milliseconds(50));
      state.ResumeTiming();
    }
  }
  (*job)->destroy();
  while (io.run_one_for(std::chrono::milliseconds(100))) {
  }
  std::filesystem::remove_all(workspace);
}

void run_native(benchmark::State& state, bool prewarm, bool image, bool layered = false, bool idle = false) {
  if (auto ok = native_available(); !ok) {
    state.SkipWithError(ok.error().message.c_str());
    return;
  }
  boost::asio::io_context io;
  NativeOptions options;
  options.prewarm = prewarm;
  auto executor = make_native_executor(io, options);
  SandboxSpec spec;
  spec.name = "bench";
  if (image) {
    spec.image = "busybox";
    spec.layers = {busybox_image().layer};
  }
  run_sandboxes(state, *executor, io, spec, "/bin/true", layered, idle);
}

void BM_NativeSandboxTrue(benchmark::State& state) { run_native(state, true, false); }
BENCHMARK(BM_NativeSandboxTrue)->Threads(1)->Threads(2)->UseRealTime();

// The same with the step's own layer of /workspace (prewarmed all but the layer, which the
// sandbox's pid 1 gets when the step takes it).
void BM_NativeSandboxTrueLayered(benchmark::State& state) { run_native(state, true, false, true); }
BENCHMARK(BM_NativeSandboxTrueLayered)->UseRealTime();
void BM_NativeSandboxTrueLayeredCold(benchmark::State& state) { run_native(state, false, false, true); }
BENCHMARK(BM_NativeSandboxTrueLayeredCold)->UseRealTime();

// One step's latency with a moment between steps (see run_sandboxes): shared workspace, layered,
// layered without prewarming (every layered step before this sandbox could be prepared ahead).
void BM_NativeSandboxTrueIdle(benchmark::State& state) { run_native(state, true, false, false, true); }
BENCHMARK(BM_NativeSandboxTrueIdle)->UseRealTime();
void BM_NativeSandboxTrueLayeredIdle(benchmark::State& state) { run_native(state, true, false, true, true); }
BENCHMARK(BM_NativeSandboxTrueLayeredIdle)->UseRealTime();
void BM_NativeSandboxTrueLayeredColdIdle(benchmark::State& state) { run_native(state, false, false, true, true); }
BENCHMARK(BM_NativeSandboxTrueLayeredColdIdle)->UseRealTime();

void BM_NativeSandboxTrueCold(benchmark::State& state) { run_native(state, false, false); }
BENCHMARK(BM_NativeSandboxTrueCold)->Threads(1)->Threads(2)->UseRealTime();

// The same `true`, in the busybox image: an overlay root with a fresh upper per sandbox.
void BM_NativeImageTrue(benchmark::State& state) { run_native(state, true, true); }
BENCHMARK(BM_NativeImageTrue)->UseRealTime();

void BM_NativeImageTrueCold(benchmark::State& state) { run_native(state, false, true); }
BENCHMARK(BM_NativeImageTrueCold)->UseRealTime();

// --executor oci (runc) in the same image.
void BM_OciImageTrue(benchmark::State& state) {
  if (auto ok = oci_available("runc"); !ok) {
    state.SkipWithError(ok.error().message.c_str());
    return;
  }
  boost::asio::io_context io;
  auto executor = make_oci_executor(io);
  SandboxSpec spec;
  spec.name = "bench";
  spec.image = "busybox";
  spec.layers = {busybox_image().layer};
  run_sandboxes(state, *executor, io, spec, "/bin/true");
}
BENCHMARK(BM_OciImageTrue)->UseRealTime();

// The baseline of the image cases: `runc run` of the same rootfs (runc spec's defaults).
void BM_RuncRunTrue(benchmark::State& state) {
  const auto& bundle = busybox_image().bundle;
  if (bundle.empty()) {
    state.SkipWithError("runc spec failed");
    return;
  }
  std::string b = bundle.string();
  char* argv[] = {const_cast<char*>("runc"), const_cast<char*>("run"), const_cast<char*>("--bundle"), b.data(),
                  const_cast<char*>("boxcar-bench-true"), nullptr};
  for (auto _ : state) {
    pid_t pid;
    if (::posix_spawnp(&pid, "runc", nullptr, nullptr, argv, environ) != 0) {
      state.SkipWithError("cannot run runc");
      break;
    }
    int status;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      state.SkipWithError("runc run true failed");
      break;
    }
  }
}
BENCHMARK(BM_RuncRunTrue)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
