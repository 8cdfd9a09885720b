#include "base/run_state.h"

#include <iterator>

namespace boxcar {

namespace {

template <typename Enum, size_t N>
std::optional<Enum> parse(const char* const (&names)[N], std::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (name == names[i]) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

}  // namespace

static_assert(std::size(kJobStates) == static_cast<size_t>(JobState::skipped) + 1);
static_assert(std::size(kStepStates) == static_cast<size_t>(StepState::error) + 1);

const char* to_string(JobState s) { return kJobStates[static_cast<size_t>(s)]; }
const char* to_string(StepState s) { return kStepStates[static_cast<size_t>(s)]; }

std::optional<JobState> parse_job_state(std::string_view name) { return parse<JobState>(kJobStates, name); }
std::optional<StepState> parse_step_state(std::string_view name) { return parse<StepState>(kStepStates, name); }

bool is_final(JobState s) { return s != JobState::queued && s != JobState::running; }

bool is_final_job_state(std::string_view name) {
  auto s = parse_job_state(name);
  return s && is_final(*s);
}

std::string job_state_names(bool final_only) {
  std::string out;
  for (const char* n : kJobStates) {
    if (final_only && !is_final_job_state(n)) continue;
    out += (out.empty() ? "" : "|") + std::string(n);
  }
  return out;
}

std::string step_state_names() {
  std::string out;
  for (const char* n : kStepStates) out += (out.empty() ? "" : "|") + std::string(n);
  return out;
}

}  // namespace boxcar
