// Store claims per second, SQLite and PostgreSQL, with 1 and 8 concurrent claimers. Baseline in
// the same run: reading one job by id (BM_ReadJob), the cheapest round trip each backend makes.
// PostgreSQL runs on a throwaway local server (testing/postgres_server), durability off, over TCP loopback.
#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "server/store/store.h"
#include "testing/postgres_server.h"

namespace {

using boxcar::server::NewJob;
using boxcar::server::Store;

std::unique_ptr<boxcar::testing::PostgresServer> g_postgres;
std::string g_postgres_error;
std::unique_ptr<Store> g_store;  // the current benchmark's, set up by thread 0
std::string g_sqlite_dir;
std::atomic<int> g_databases{0};

// A fresh, migrated store with `jobs` queued jobs; false (and the benchmark skipped) on error.
bool open_fresh_store(benchmark::State& state, const std::string& backend, int64_t jobs) {
  std::string url;
  if (backend == "sqlite") {
    char dir[] = "/tmp/boxcar-store-bench-XXXXXX";
    if (mkdtemp(dir) == nullptr) {
      state.SkipWithError("mkdtemp failed");
      return false;
    }
    g_sqlite_dir = dir;
    url = "sqlite:" + g_sqlite_dir + "/boxcar.db";
  } else {
    if (!g_postgres) {
      state.SkipWithError(("no PostgreSQL: " + g_postgres_error).c_str());
      return false;
    }
    auto created = g_postgres->create_database("bench_" + std::to_string(++g_databases));
    if (!created) {
      state.SkipWithError(created.error().message.c_str());
      return false;
    }
    url = *created;
  }
  auto store = boxcar::server::open_store(url);
  if (!store || !(*store)->migrate()) {
    state.SkipWithError("cannot open or migrate the store");
    return false;
  }
  g_store = std::move(*store);
  NewJob job;
  job.repo = "https://example.com/app.git";
  job.ref = "refs/heads/main";
  job.env = {{"CI", "true"}};
  for (int64_t i = 0; i < jobs; ++i) {
    if (!g_store->enqueue(job)) {
      state.SkipWithError("enqueue failed");
      return false;
    }
  }
  if (backend == "postgres") {
    // What autovacuum does soon after a burst of enqueues on a real server: without statistics
    // the planner sorts every queued row instead of walking the queue index.
    PGconn* conn = PQconnectdb(url.c_str());
    PQclear(PQexec(conn, "ANALYZE jobs"));
    PQfinish(conn);
  }
  return true;
}

void close_store() {
  g_store.reset();
  if (!g_sqlite_dir.empty()) {
    std::filesystem::remove_all(g_sqlite_dir);
    g_sqlite_dir.clear();
  }
}

// Each iteration claims one job; every claimer's claims succeed (the queue holds enough).
void BM_Claim(benchmark::State& state, const std::string& backend) {
  if (state.thread_index() == 0) {
    open_fresh_store(state, backend, state.max_iterations * state.threads());
  }
  int64_t thread = state.thread_index();
  boxcar::server::LeaseHolder agent{thread + 1, "agent-" + std::to_string(thread), "lease-" + std::to_string(thread)};
  for (auto _ : state) {  // the loop's start and end are barriers for all threads
    auto job = g_store->claim(agent, {}, 60'000, 1'000);
    if (!job || !*job) {
      state.SkipWithError("claim found no job");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) close_store();
}

void BM_ReadJob(benchmark::State& state, const std::string& backend) {
  if (state.thread_index() == 0) open_fresh_store(state, backend, 100);
  int64_t id = 1 + state.thread_index();
  for (auto _ : state) {
    auto job = g_store->job(id);
    if (!job || !*job) {
      state.SkipWithError("job not found");
      break;
    }
    benchmark::DoNotOptimize(job);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) close_store();
}

void configure(benchmark::internal::Benchmark* b) {
  b->Threads(1)->Threads(8)->Iterations(1000)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK_CAPTURE(BM_ReadJob, sqlite, std::string("sqlite"))->Apply(configure);
BENCHMARK_CAPTURE(BM_Claim, sqlite, std::string("sqlite"))->Apply(configure);
BENCHMARK_CAPTURE(BM_ReadJob, postgres, std::string("postgres"))->Apply(configure);
BENCHMARK_CAPTURE(BM_Claim, postgres, std::string("postgres"))->Apply(configure);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Started here, on the main thread: the server dies with the thread that forked it.
  auto server = boxcar::testing::PostgresServer::start();
  if (server) {
    g_postgres = std::move(*server);
  } else {
    g_postgres_error = server.error().message;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_postgres.reset();
  return 0;
}
