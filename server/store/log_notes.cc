#include "server/store/log_notes.h"

#include "base/size.h"
#include "base/terminal_escape.h"

namespace boxcar::server {

std::string lease_lost_note(int64_t attempt, int64_t max_attempts, const std::string& agent,
                            LeaseLostOutcome outcome) {
  // The agent's name is registered by the agent itself: escaped, so it cannot forge lines.
  std::string note = "boxcar: attempt " + std::to_string(attempt) + " of " +
                     std::to_string(max_attempts) + " lost: agent \"" + escape_for_terminal(agent) +
                     "\" stopped reporting (its lease expired); ";
  switch (outcome) {
    case LeaseLostOutcome::requeued:
      note += "queued again as attempt " + std::to_string(attempt + 1);
      break;
    case LeaseLostOutcome::gave_up:
      note += "the job ends as an error: " + lease_lost_reason(attempt, max_attempts);
      break;
    case LeaseLostOutcome::cancelled:
      note += "the job was being cancelled, so it ends cancelled";
      break;
  }
  return note + "\n";
}

std::string lease_lost_reason(int64_t attempt, int64_t max_attempts) {
  return "lease expired " + std::to_string(attempt) + " times: agent lost (a job whose agent dies " +
         std::to_string(max_attempts) + " times is not run again: boxcar serve --max-attempts)";
}

std::string log_truncated_note(int64_t max_log_bytes) {
  return "boxcar: the job's log reached the server's limit of " +
         format_size(static_cast<uint64_t>(max_log_bytes)) +
         " (boxcar serve --max-job-log): the rest of it is dropped\n";
}

std::string superseded_note(const std::string& reason, bool running) {
  return "boxcar: " + reason + (running ? ": cancelling it (its agent stops it)\n" : ": cancelled\n");
}

std::string_view head_within(std::string_view data, int64_t room) {
  if (room <= 0) return {};
  if (static_cast<uint64_t>(room) >= data.size()) return data;
  size_t last = data.rfind('\n', static_cast<size_t>(room) - 1);
  return last == std::string_view::npos ? std::string_view() : data.substr(0, last + 1);
}

}  // namespace boxcar::server
