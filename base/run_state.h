// The states of a job and of a step, and their names on the wire, in the database and on screen
// (contract, DESIGN.md section 6): defined here once for pipeline/, protocol/, server/ and agent/.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace boxcar {

// queued -> running -> success | failed | cancelled | error; queued -> cancelled (cancel before
// a claim) | skipped (filtered out by [on]). A running job whose lease expires goes back to
// queued with attempt+1 (or to error past max_attempts).
enum class JobState { queued, running, success, failed, cancelled, error, skipped };
// The names, in the enum's order: the index of a name is its JobState.
inline constexpr const char* kJobStates[] = {"queued",    "running", "success", "failed",
                                            "cancelled", "error",   "skipped"};

enum class StepState { pending, running, success, failed, skipped, cancelled, timeout, oom, error };
inline constexpr const char* kStepStates[] = {"pending",   "running", "success", "failed", "skipped",
                                             "cancelled", "timeout", "oom",     "error"};

const char* to_string(JobState s);
const char* to_string(StepState s);
// nullopt for a name that is not one of the above (names are lowercase; "Success" is not one).
std::optional<JobState> parse_job_state(std::string_view name);
std::optional<StepState> parse_step_state(std::string_view name);

// A job that will not run again: success, failed, cancelled, error or skipped.
bool is_final(JobState s);
// Whether `name` names a final job state.
bool is_final_job_state(std::string_view name);

// "queued|running|..." for messages that list what is accepted; `final_only` leaves out queued
// and running.
std::string job_state_names(bool final_only = false);
std::string step_state_names();

}  // namespace boxcar
