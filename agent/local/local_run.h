// LocalRun: what `boxcar run` adds to a PipelineRun: the run directory
// (.boxcar/runs/<run-id>/ with its logs, artifacts and summary), the terminal or JSON reporter,
// and Ctrl-C (once: cancel with the steps' grace; twice: kill; after the pipeline: close the
// previews). The CLI parses the flags, loads the pipeline, chooses the executor and opens the
// preview proxy; this runs it and says how it ended.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include <boost/asio/io_context.hpp>

#include "agent/cache_store.h"
#include "agent/preview_publisher.h"
#include "agent/image_source.h"
#include "network/job_network.h"
#include "agent/step_limits.h"
#include "base/result.h"
#include "executors/executor.h"
#include "pipeline/pipeline.h"

namespace boxcar::agent {

struct LocalRunOptions {
  std::filesystem::path workspace;             // canonical; the run directory goes under it
  size_t jobs = 1;                             // steps at once
  std::map<std::string, std::string> secrets;  // name -> value
  uint64_t log_limit = 64ull << 20;            // per step
  std::string commit;                          // BOXCAR_COMMIT; "" outside git
  std::string branch;                          // BOXCAR_BRANCH and `when.branch`
  std::string event = "manual";
  // BOXCAR_REF, BOXCAR_TAG, BOXCAR_REPO (and the BOXCAR_PR_* ones, empty): for every step.
  std::map<std::string, std::string> run_env;
  StepLimits limits;
  bool json = false;        // JSON lines on `out` instead of the terminal reporter
  bool timestamps = false;  // terminal: HH:MM:SS before each line
  bool quiet = false;       // terminal: step events and the summary only
  bool keep_failed = false;
  // Where the URLs of exposed ports come from; null: http://localhost:PORT/.
  PreviewPublisher* previews = nullptr;
  // Where the images of steps and services come from; null when the pipeline names none.
  ImageSource* images = nullptr;
  network::NetworkHost* networks = nullptr;  // job networks with egress; null: loopback only
  // Where the steps' workspace layers go (run_layers.h), outside the workspace; empty: the steps
  // share the workspace.
  std::filesystem::path layers_base;
  // [[step.cache]] entries (beside the image cache) and the repository they are kept by (origin's
  // URL, else the workspace's path); null: caches are off.
  CacheStore* caches = nullptr;
  std::string repository;
  // Called once the run holds nothing more (the CLI closes its preview proxy, whose accept
  // loop would keep the io_context going).
  std::function<void()> released;
};

enum class LocalRunEnd {
  success,      // every step that must succeed did
  failed,       // some step failed
  step_error,   // some step could not be set up (an infrastructure error)
  interrupted,  // Ctrl-C (or SIGTERM) while the pipeline ran
};

// Runs `pipeline` (already checked against options.limits) on `executor` with `io` (run here
// until the run is over). An Error when it could not start: the run directory or the
// executor's job could not be made.
Result<LocalRunEnd> run_locally(boost::asio::io_context& io, executors::Executor& executor,
                                pipeline::ExpandedPipeline pipeline, const LocalRunOptions& options,
                                std::FILE* out);

}  // namespace boxcar::agent
