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
    // Teardown waits for the kernel (veth deletion synchronizes RCU) but not the job: measured
    // apart, below.
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

}  // namespace

BENCHMARK_MAIN();
