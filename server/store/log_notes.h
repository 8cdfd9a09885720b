// The lines the server itself writes into a job's log (under protocol::kJobLogStep, attempt 0):
// an attempt lost with its agent, and the log's size cap reached; and where a chunk is cut at
// the cap. Both stores write the same text, so they are made here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace boxcar::server {

// Sequence numbers of the server's notes within one job attempt: each is written at most once.
inline constexpr int64_t kLeaseLostNoteSeq = 0;
inline constexpr int64_t kLogTruncatedNoteSeq = 1;
inline constexpr int64_t kSupersededNoteSeq = 2;

// What happened to a job whose lease expired: re-queued, ended as an error past its attempts,
// or ended cancelled (its cancel had been asked for).
enum class LeaseLostOutcome { requeued, gave_up, cancelled };

// "boxcar: attempt 1 of 3 lost: agent "a" stopped reporting (its lease expired); queued again
// as attempt 2\n" (and the like for the other outcomes).
std::string lease_lost_note(int64_t attempt, int64_t max_attempts, const std::string& agent,
                            LeaseLostOutcome outcome);
// The job's reason when it gives up: "lease expired N times: agent lost (...)".
std::string lease_lost_reason(int64_t attempt, int64_t max_attempts);
// "boxcar: the job's log reached the server's limit of 64.0 MiB (boxcar serve --max-job-log):
// the rest of it is dropped\n"
std::string log_truncated_note(int64_t max_log_bytes);
// "boxcar: superseded by job #12 (push of abc1234): cancelled\n" of its reason; `running`: the
// job is being stopped ("...: its agent stops it").
std::string superseded_note(const std::string& reason, bool running);
// The part of a chunk kept when only `room` bytes of the job's log are left: its whole lines
// that fit ("" when not even the first does).
std::string_view head_within(std::string_view data, int64_t room);

}  // namespace boxcar::server
