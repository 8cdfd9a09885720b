#include "sandboxes/process_table.h"

#include <chrono>

namespace boxcar::sandboxes {

using executors::Outcome;

namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

std::string process_status(const Outcome& o) {
  switch (o.kind) {
    case Outcome::Kind::ok:
      return "completed";
    case Outcome::Kind::failed:
      return "failed";
    case Outcome::Kind::signaled:
    case Outcome::Kind::cancelled:
      return "killed";
    case Outcome::Kind::timeout:
      return "timeout";
    case Outcome::Kind::oom:
      return "oom";
    case Outcome::Kind::setup_error:
      return "error";
    case Outcome::Kind::quota_exceeded:
      return "quota_exceeded";
  }
  return "error";
}

std::shared_ptr<Process> ProcessTable::add(std::string id, std::string& why, bool& full) {
  full = false;
  if (processes_.size() + *execs_ >= kMaxProcesses) {
    full = true;
    why = "this sandbox has " + std::to_string(processes_.size()) + " processes and " + std::to_string(*execs_) +
          " execs running, the limit is " + std::to_string(kMaxProcesses) +
          " together: DELETE /processes?status=finished removes the ended ones";
    return nullptr;
  }
  if (id.empty()) {
    do id = "p" + std::to_string(next_++);
    while (processes_.count(id));
  } else if (processes_.count(id)) {
    why = "process \"" + id + "\" exists";
    return nullptr;
  }
  auto p = std::make_shared<Process>();
  p->id = id;
  p->started_at_ms = now_ms();
  processes_[id] = p;
  return p;
}

std::shared_ptr<void> ProcessTable::exec_slot(std::string& why) {
  if (processes_.size() + *execs_ >= kMaxProcesses) {
    why = "this sandbox has " + std::to_string(processes_.size()) + " processes and " + std::to_string(*execs_) +
          " execs running, the limit is " + std::to_string(kMaxProcesses) +
          " together: wait for an exec to end, or DELETE /processes?status=finished";
    return nullptr;
  }
  ++*execs_;
  return std::shared_ptr<void>(execs_.get(), [count = execs_](void*) { --*count; });
}

std::shared_ptr<Process> ProcessTable::find(const std::string& id) const {
  auto it = processes_.find(id);
  return it == processes_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Process>> ProcessTable::list() const {
  std::vector<std::shared_ptr<Process>> out;
  for (const auto& [id, p] : processes_) out.push_back(p);
  return out;
}

bool ProcessTable::remove(const std::string& id) { return processes_.erase(id) > 0; }

void ProcessTable::finished(Process& p, const Outcome& outcome) {
  if (!p.running()) return;
  p.outcome = outcome;
  p.status = process_status(outcome);
  p.exited_at_ms = now_ms();
  auto waiters = std::move(p.on_exit);
  p.on_exit.clear();
  for (auto& [id, fn] : waiters) fn();
}

void ProcessTable::kill_all() {
  for (auto& [id, p] : processes_) {
    if (p->run && !p->run->finished()) p->run->stop(Outcome::Kind::cancelled, Millis(0));
  }
}

}  // namespace boxcar::sandboxes
