// RunDirectory: where a local run keeps its results: .boxcar/runs/<run-id>/{logs,artifacts}/ and
// summary.json, inside the workspace.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/log_file_name.h"
#include "agent/run_observer.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::agent {

class RunDirectory {
 public:
  // Creates <workspace>/.boxcar/runs/<id>/ with logs/. The id sorts by time:
  // 20261126-045804-3f2a.
  static Result<RunDirectory> create(const std::filesystem::path& workspace);

  const std::string& id() const { return id_; }
  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path logs() const { return root_ / "logs"; }
  std::filesystem::path artifacts() const { return root_ / "artifacts"; }

  // logs/<name>.log, with the step name made safe as a file name ("test (cc=gcc)" ->
  // "test_cc=gcc_"); attempt > 1 adds ".attemptN".
  std::filesystem::path log_file(std::string_view step_name, int attempt) const;

  // Writes summary.json: every step's name, status, duration, reason, exit code, attempts.
  Status write_summary(bool success, const std::vector<StepSummary>& steps, Millis duration) const;

 private:
  std::string id_;
  std::filesystem::path root_;
  std::shared_ptr<unique_fd> root_fd_;  // opened at create(), before any step ran
};

}  // namespace boxcar::agent
