// The store suite's fixture, shared by its source files (store_test.cc: jobs, leases, logs,
// artifacts; store_previews_test.cc): each test runs on SQLite (a fresh file) and PostgreSQL
// (a fresh database in one throwaway server per binary). Not in an anonymous namespace: every
// file's TEST_P must name the same fixture class.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/store/store.h"
#include "testing/postgres_server.h"

namespace boxcar::server::store_testing {

using boxcar::testing::PostgresServer;

// Started by the first PostgreSQL test, so a run of only the SQLite ones never starts it;
// stopped by the environment when the binary's tests are done.
struct SharedPostgres {
  std::unique_ptr<PostgresServer> server;
  std::string error;
  bool tried = false;
  int databases = 0;
};
inline SharedPostgres& shared_postgres() {
  static SharedPostgres shared;
  return shared;
}

class PostgresEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { shared_postgres().server.reset(); }
};

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string url;
    if (GetParam() == "sqlite") {
      char dir[] = "/tmp/boxcar-store-test-XXXXXX";
      ASSERT_NE(mkdtemp(dir), nullptr);
      dir_ = dir;
      url = "sqlite:" + dir_ + "/nested/dir/boxcar.db";  // parent directories are created
    } else {
      if (auto bin = PostgresServer::bin_dir(); !bin) GTEST_SKIP() << bin.error().message;
      auto& pg = shared_postgres();
      if (!pg.tried) {
        pg.tried = true;
        auto server = PostgresServer::start();
        if (server) {
          pg.server = std::move(*server);
        } else {
          pg.error = server.error().message;
        }
      }
      ASSERT_TRUE(pg.server) << pg.error;
      auto created = pg.server->create_database("store_" + std::to_string(++pg.databases));
      ASSERT_TRUE(created) << created.error().message;
      url = *created;
    }
    url_ = url;
    auto store = open_store(url);
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    auto migrated = store_->migrate();
    ASSERT_TRUE(migrated) << migrated.error().message;
  }

  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  int64_t enqueue(const std::string& repo = "https://example.com/r.git",
                  std::vector<std::string> labels = {}, int max_attempts = 3) {
    NewJob job;
    job.repo = repo;
    job.labels = std::move(labels);
    job.max_attempts = max_attempts;
    auto id = store_->enqueue(job);
    EXPECT_TRUE(id) << id.error().message;
    return id ? *id : 0;
  }

  JobRecord get(int64_t id) {
    auto job = store_->job(id);
    EXPECT_TRUE(job) << job.error().message;
    EXPECT_TRUE(job && *job) << "no job " << id;
    return job && *job ? **job : JobRecord{};
  }

  // The lease `agent` takes in these tests: an id per name (in order of first use) and a token
  // hash per name, so "a1" and "a2" differ in both.
  LeaseHolder lease(const std::string& agent) {
    auto [it, added] = agent_ids_.try_emplace(agent, static_cast<int64_t>(agent_ids_.size()) + 1);
    return LeaseHolder{it->second, agent, "lease-of-" + agent};
  }

  std::optional<JobRecord> claim(const std::string& agent, std::vector<std::string> labels = {},
                                 int64_t lease_ms = 60'000, UnixMillis now = 1'000) {
    auto job = store_->claim(lease(agent), labels, lease_ms, now);
    EXPECT_TRUE(job) << job.error().message;
    return job ? *job : std::nullopt;
  }

  LogChunk chunk(const std::string& step, int64_t seq, const std::string& data) {
    LogChunk c;
    c.step = step;
    c.seq = seq;
    c.data = data;
    c.at = 5'000 + seq;
    return c;
  }

  // A preview sync whose answer must come back (accepted or not).
  PreviewSyncResult sync(int64_t id, const std::string& agent,
                         const std::vector<PreviewRecord>& open, UnixMillis now) {
    auto r = store_->sync_previews(id, lease(agent), open, now);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : PreviewSyncResult{};
  }

  std::vector<PreviewRecord> previews(int64_t id) {
    auto all = store_->previews(id);
    EXPECT_TRUE(all) << all.error().message;
    return all ? *all : std::vector<PreviewRecord>{};
  }

  std::string dir_;
  std::string url_;
  std::unique_ptr<Store> store_;
  std::map<std::string, int64_t> agent_ids_;
};

}  // namespace boxcar::server::store_testing
