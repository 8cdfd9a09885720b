// StepCaches: a run's [[step.cache]]s (docs/pipeline.md): before a step's first attempt its keys
// are filled in from the workspace as the step finds it and looked up in the machine's store
// (agent/cache_store.h), else in the server's copy (a CacheRemote); the entries found are held
// and mounted as lower layers of the step's /workspace and home; after the step succeeded each
// key that missed is saved (and uploaded). The entries stay held (never evicted) until this goes
// with the run: a dependent's stack mounts its needs' caches too. Hashing, copying and unpacking run on a worker thread
// of this object's own, never on the io thread. Each outcome is a line of the run's log.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "agent/cache_remote.h"
#include "agent/cache_store.h"
#include "agent/run_observer.h"
#include "agent/workspace_layers.h"
#include "executors/spec.h"
#include "pipeline/pipeline.h"

namespace boxcar::agent {

struct CacheRunOptions {
  CacheStore* store = nullptr;    // null: caches are off
  std::string repository;         // what entries are kept by (never shared between two)
  std::string branch;             // ${branch}
  bool save = true;               // false: a fork's pull request, which restores but never saves
  CacheRemote* remote = nullptr;  // the server's copy; null: none (`boxcar run`)
};

class StepCaches {
 public:
  StepCaches(boost::asio::io_context& io, WorkspaceLayers& layers, const pipeline::ExpandedPipeline& pipeline,
             CacheRunOptions options, RunObserver& observer);
  ~StepCaches();  // waits for the worker

  bool wanted(size_t step) const;

  // Before the step's first attempt (io thread); `ready` is called on it when done, whatever
  // was found.
  void restore(size_t step, std::function<void()> ready);
  // Before each attempt: the directories restored (for StepAttempt::caches) and, for each path
  // under "~/", a layered directory at that path under `home` (the step's HOME) over the
  // entries' copies of it; the rest of the home is left as the image has it.
  std::vector<std::filesystem::path> workspace_lowers(size_t step) const;
  std::vector<executors::LayeredDir> home_layers(size_t step, const std::string& home);
  // After the step succeeded: saves each key that missed, then `done` (io thread).
  void save(size_t step, std::function<void()> done);

 private:
  struct PerStep {
    std::vector<std::string> keys;  // filled in; "" where it could not be
    std::vector<std::vector<std::string>> restore_keys;
    std::vector<std::shared_ptr<CacheHit>> hits;  // null: a miss
    std::vector<std::string> home_paths;          // every "~/..." path, once
    bool home_given = false;                      // their layers were made (named by index)
  };
  void fetch_misses(size_t step, size_t from, std::shared_ptr<PerStep> work, std::function<void()> ready);
  void restored(size_t step, std::shared_ptr<PerStep> work, std::function<void()> ready);
  std::string label(size_t step, size_t cache) const;

  boost::asio::io_context& io_;
  WorkspaceLayers& layers_;
  const pipeline::ExpandedPipeline& pipeline_;
  CacheRunOptions options_;
  RunObserver& observer_;
  std::vector<std::shared_ptr<PerStep>> steps_;
  std::vector<std::vector<bool>> from_remote_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  boost::asio::thread_pool worker_{1};
};

}  // namespace boxcar::agent
