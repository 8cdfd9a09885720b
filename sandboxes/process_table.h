// The background processes of one sandbox (SANDBOXES.md §2.4): each a CommandRun whose output is
// spooled to an OutputLog, kept after it ended until deleted. At most 256 per sandbox, a bound
// that running execs share: processes and execs in flight together never pass it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "executors/outcome.h"
#include "sandboxes/command_run.h"
#include "sandboxes/output_log.h"

namespace boxcar::sandboxes {

struct Process {
  std::string id;
  int pid = 0;
  std::vector<std::string> argv;
  std::optional<std::string> command;
  std::optional<std::string> session;
  std::string status = "running";  // running|completed|failed|killed|timeout|oom|error
  executors::Outcome outcome;
  int64_t started_at_ms = 0;
  int64_t exited_at_ms = 0;
  bool stdin_pipe = false;
  std::shared_ptr<CommandRun> run;
  std::unique_ptr<OutputLog> log;
  // Called once when it ended (waits, log followers); then cleared.
  std::map<uint64_t, std::function<void()>> on_exit;
  uint64_t next_waiter = 1;

  bool running() const { return status == "running"; }
};

// "completed", "failed", ... for an outcome.
std::string process_status(const executors::Outcome& outcome);

class ProcessTable {
 public:
  static constexpr size_t kMaxProcesses = 256;

  ~ProcessTable() { kill_all(); }

  // A new entry (not started: the caller starts its run). nullptr: the id is taken or the table
  // is full (`why` says which, `full` tells them apart).
  std::shared_ptr<Process> add(std::string id, std::string& why, bool& full);
  std::shared_ptr<Process> find(const std::string& id) const;
  std::vector<std::shared_ptr<Process>> list() const;
  // A place for one exec while it runs (or waits for its session): released when the returned
  // token goes. nullptr when processes and execs fill the sandbox's 256 (`why` says so).
  std::shared_ptr<void> exec_slot(std::string& why);
  bool remove(const std::string& id);
  // Marks `p` ended with `outcome` and runs its exit callbacks.
  static void finished(Process& p, const executors::Outcome& outcome);

  // Kills every process still running (the sandbox is going away).
  void kill_all();

 private:
  std::map<std::string, std::shared_ptr<Process>> processes_;
  uint64_t next_ = 1;
  // Execs in flight; shared with their tokens, which may outlive the table.
  std::shared_ptr<size_t> execs_ = std::make_shared<size_t>(0);
};

}  // namespace boxcar::sandboxes
