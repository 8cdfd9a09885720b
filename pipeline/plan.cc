#include "pipeline/plan.h"

#include <algorithm>
#include <cassert>

#include "base/glob.h"

namespace boxcar::pipeline {

bool is_terminal(StepState s) { return s != StepState::pending && s != StepState::running; }

bool is_failure(StepState s) {
  return s == StepState::failed || s == StepState::timeout || s == StepState::oom ||
         s == StepState::error;
}

std::string when_rejection(const When& when, const RunContext& ctx) {
  if (!when.branch.empty() && !ctx.no_branch.empty()) return "when.branch: " + ctx.no_branch;
  if (!when.branch.empty() && !ctx.branch.empty()) {
    bool any = std::any_of(when.branch.begin(), when.branch.end(),
                           [&](const std::string& glob) { return glob_match(glob, ctx.branch); });
    if (!any) return "when.branch does not match \"" + ctx.branch + "\"";
  }
  if (!when.event.empty() && !ctx.event.empty()) {
    if (std::find(when.event.begin(), when.event.end(), ctx.event) == when.event.end())
      return "when.event does not include \"" + ctx.event + "\"";
  }
  return "";
}

bool when_admits(const When& when, const RunContext& ctx) {
  return when_rejection(when, ctx).empty();
}

namespace {

// Counts toward failed() and lets a when.status = failure step run.
bool is_bad_end(StepState s) { return is_failure(s) || s == StepState::cancelled; }

const char* outcome_words(StepState s) {
  switch (s) {
    case StepState::timeout: return "timed out";
    case StepState::oom: return "ran out of memory";
    case StepState::error: return "failed (error)";
    case StepState::skipped: return "was skipped";
    case StepState::cancelled: return "was cancelled";
    default: return "failed";
  }
}

}  // namespace

Plan::Plan(const ExpandedPipeline& pipeline, const RunContext& ctx) {
  const size_t n = pipeline.steps.size();
  names_.reserve(n);
  allow_failure_.reserve(n);
  status_.reserve(n);
  waits_.resize(n);
  states_.assign(n, StepState::pending);
  reasons_.assign(n, "");
  for (size_t i = 0; i < n; ++i) {
    const ConcreteStep& cs = pipeline.steps[i];
    names_.push_back(cs.name);
    allow_failure_.push_back(cs.step.allow_failure);
    status_.push_back(cs.step.when ? cs.step.when->status : WhenStatus::success);
    // The parser guarantees valid, distinct indices; stay safe if handed anything else.
    for (size_t need : cs.needs) {
      if (need < n && need != i &&
          std::find(waits_[i].begin(), waits_[i].end(), need) == waits_[i].end())
        waits_[i].push_back(need);
    }
  }
  add_finally_waits();
  order_steps();
  for (size_t i = 0; i < n; ++i) {
    const auto& when = pipeline.steps[i].step.when;
    if (!when || states_[i] != StepState::pending) continue;
    std::string why = when_rejection(*when, ctx);
    if (!why.empty()) {
      states_[i] = StepState::skipped;
      reasons_[i] = std::move(why);
    }
  }
  settle();
}

// A finally step (status failure|always, no needs) waits for every other step except finally
// steps and the steps that wait for it. Adding the edges one finally step at a time, against
// the graph built so far, cannot close a cycle: an edge F -> S is only added when S does not
// already reach F.
void Plan::add_finally_waits() {
  const size_t n = waits_.size();
  std::vector<bool> is_finally(n);
  for (size_t i = 0; i < n; ++i)
    is_finally[i] = status_[i] != WhenStatus::success && waits_[i].empty();

  std::vector<std::vector<size_t>> dependents(n);
  for (size_t i = 0; i < n; ++i)
    for (size_t w : waits_[i]) dependents[w].push_back(i);

  std::vector<bool> reaches(n);
  std::vector<size_t> stack;
  for (size_t f = 0; f < n; ++f) {
    if (!is_finally[f]) continue;
    std::fill(reaches.begin(), reaches.end(), false);
    reaches[f] = true;
    stack.assign(1, f);
    while (!stack.empty()) {
      size_t s = stack.back();
      stack.pop_back();
      for (size_t d : dependents[s]) {
        if (!reaches[d]) {
          reaches[d] = true;
          stack.push_back(d);
        }
      }
    }
    for (size_t s = 0; s < n; ++s) {
      if (is_finally[s] || reaches[s]) continue;
      waits_[f].push_back(s);
      dependents[s].push_back(f);
    }
  }
}

// Kahn's algorithm, so settle() decides every step after all of its waits in one pass.
void Plan::order_steps() {
  const size_t n = waits_.size();
  std::vector<size_t> missing(n);
  std::vector<std::vector<size_t>> dependents(n);
  for (size_t i = 0; i < n; ++i) {
    missing[i] = waits_[i].size();
    for (size_t w : waits_[i]) dependents[w].push_back(i);
  }
  order_.clear();
  order_.reserve(n);
  for (size_t i = 0; i < n; ++i)
    if (missing[i] == 0) order_.push_back(i);
  for (size_t k = 0; k < order_.size(); ++k) {
    for (size_t d : dependents[order_[k]])
      if (--missing[d] == 0) order_.push_back(d);
  }
  // Only reachable if handed a pipeline the parser would have rejected; never hang on it.
  for (size_t i = 0; i < n; ++i) {
    if (missing[i] != 0) {
      states_[i] = StepState::error;
      reasons_[i] = "needs form a cycle";
      order_.push_back(i);
    }
  }
}

bool Plan::failure_upstream(size_t step) const {
  std::vector<bool> seen(waits_.size());
  std::vector<size_t> stack(waits_[step].begin(), waits_[step].end());
  while (!stack.empty()) {
    size_t s = stack.back();
    stack.pop_back();
    if (seen[s]) continue;
    seen[s] = true;
    if (is_bad_end(states_[s]) && !allow_failure_[s]) return true;
    stack.insert(stack.end(), waits_[s].begin(), waits_[s].end());
  }
  return false;
}

Plan::Verdict Plan::judge(size_t step, std::string* why) const {
  for (size_t w : waits_[step])
    if (!is_terminal(states_[w])) return Verdict::wait;
  switch (status_[step]) {
    case WhenStatus::always:
      return Verdict::run;
    case WhenStatus::failure:
      if (failure_upstream(step)) return Verdict::run;
      if (why) *why = "no earlier step failed";
      return Verdict::skip;
    case WhenStatus::success:
      break;
  }
  for (size_t w : waits_[step]) {
    StepState s = states_[w];
    if (s == StepState::success || (is_failure(s) && allow_failure_[w])) continue;
    if (why) *why = "needs \"" + names_[w] + "\" " + outcome_words(s);
    return Verdict::skip;
  }
  return Verdict::run;
}

std::vector<size_t> Plan::ready() const {
  std::vector<size_t> out;
  for (size_t i = 0; i < states_.size(); ++i)
    if (states_[i] == StepState::pending && judge(i, nullptr) == Verdict::run) out.push_back(i);
  return out;
}

void Plan::start(size_t step) {
  assert(states_[step] == StepState::pending);
  states_[step] = StepState::running;
}

// Also accepted from pending: a step the scheduler could not even start ends as `error`.
void Plan::finish(size_t step, StepState state) {
  assert(is_terminal(state));
  assert(!is_terminal(states_[step]));
  if (!is_terminal(state) || is_terminal(states_[step])) return;
  states_[step] = state;
  settle();
}

void Plan::cancel(bool spare_always) {
  for (size_t i = 0; i < states_.size(); ++i) {
    if (states_[i] == StepState::pending && !(spare_always && status_[i] == WhenStatus::always)) {
      states_[i] = StepState::cancelled;
      reasons_[i] = "cancelled";
    }
  }
}

bool Plan::done() const {
  return std::all_of(states_.begin(), states_.end(), [](StepState s) { return is_terminal(s); });
}

bool Plan::failed() const {
  for (size_t i = 0; i < states_.size(); ++i)
    if (is_bad_end(states_[i]) && !allow_failure_[i]) return true;
  return false;
}

void Plan::settle() {
  std::string why;
  for (size_t i : order_) {
    if (states_[i] != StepState::pending) continue;
    if (judge(i, &why) == Verdict::skip) {
      states_[i] = StepState::skipped;
      reasons_[i] = why;
    }
  }
}

}  // namespace boxcar::pipeline
