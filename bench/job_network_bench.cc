// Job start with an egress network (namespace, veth, addresses, routes, two nftables tables, the
// resolver's sockets) against today's loopback-only namespace, both created and torn down, in
// the same run. Goal (DESIGN.md §8): under 5 ms more. Run as root.
#include <benchmark/benchmark.h>

#include <boost/asio/io_context.hpp>

#include "executors/native/network.h"
#include "network/job_network.h"

namespace {

void BM_LoopbackOnlyNamespace(benchmark::State& state) {
  for (auto _ : state) {
    auto ns = boxcar::executors::native::make_job_netns();
    if (!ns) state.SkipWithError(ns.error().message.c_str());
  }
}
BENCHMARK(BM_LoopbackOnlyNamespace)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_JobNetwork(benchmark::State& state) {
  boost::asio::io_context io;
  auto host = boxcar::network::NetworkHost::make(io, {});
  if (!host) {
    state.SkipWithError(host.error().message.c_str());
    return;
  }
  for (auto _ : state) {
    auto job = (*host)->create_job("bench");
    if (!job) state.SkipWithError(job.error().message.c_str());
    // Teardown is measured apart, below (the kernel takes the veth down with the namespace,
    // on a work queue of its own).
    state.PauseTiming();
    job = boxcar::Error{"done"};
    state.ResumeTiming();
  }
}
BENCHMARK(BM_JobNetwork)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_JobNetworkTeardown(benchmark::State& state) {
  boost::asio::io_context io;
  auto host = boxcar::network::NetworkHost::make(io, {});
  if (!host) {
    state.SkipWithError(host.error().message.c_str());
    return;
  }
  for (auto _ : state) {
    state.PauseTiming();
    auto job = (*host)->create_job("bench");
    state.ResumeTiming();
    job = boxcar::Error{"done"};
  }
}
BENCHMARK(BM_JobNetworkTeardown)->Unit(benchmark::kMillisecond)->UseRealTime();

// A step's registration and, once it ended, the read of what its policy refused (the line at
// the end of its log): both on the agent's io thread, once per step.
void BM_StepRegisterAndReport(benchmark::State& state) {
  boost::asio::io_context io;
  auto host = boxcar::network::NetworkHost::make(io, {});
  if (!host) {
    state.SkipWithError(host.error().message.c_str());
    return;
  }
  auto job = (*host)->create_job("bench");
  if (!job) {
    state.SkipWithError(job.error().message.c_str());
    return;
  }
  for (auto _ : state) {
    auto net_class = (*job)->add_step("step", std::nullopt);
    if (!net_class) state.SkipWithError(net_class.error().message.c_str());
    benchmark::DoNotOptimize((*job)->report(*net_class));
    (*job)->remove_step(*net_class);
  }
}
BENCHMARK(BM_StepRegisterAndReport)->Unit(benchmark::kMillisecond)->UseRealTime();

// What a process pays once before its first job network (`boxcar run` pays it every run): the
// machine checked, forwarding on, stale slots swept, nftables and netlink opened, the resolver's
// thread started; and stopped again.
void BM_NetworkHostMake(benchmark::State& state) {
  boost::asio::io_context io;
  for (auto _ : state) {
    auto host = boxcar::network::NetworkHost::make(io, {});
    if (!host) state.SkipWithError(host.error().message.c_str());
  }
}
BENCHMARK(BM_NetworkHostMake)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
