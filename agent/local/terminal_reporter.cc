#include "agent/local/terminal_reporter.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "agent/local/step_label.h"
#include "base/size.h"

namespace boxcar::agent {

namespace {

constexpr size_t kBufferSize = 64 * 1024;

constexpr const char* kReset = "\x1b[0m";
constexpr const char* kBold = "\x1b[1m";
constexpr const char* kGreen = "\x1b[32m";
constexpr const char* kRed = "\x1b[31m";
constexpr const char* kYellow = "\x1b[33m";

using pipeline::StepState;

std::string status_text(const StepSummary& s) {
  std::string text = pipeline::to_string(s.state);
  if (s.allow_failure && pipeline::is_failure(s.state)) text += " (allowed)";
  return text;
}

const char* status_color(const StepSummary& s) {
  if (s.state == StepState::success) return kGreen;
  if (pipeline::is_failure(s.state)) return s.allow_failure ? kYellow : kRed;
  if (s.state == StepState::skipped || s.state == StepState::cancelled) return kYellow;
  return nullptr;
}

bool ran(const StepSummary& s) { return s.attempts > 0 || s.duration.count() > 0; }

}  // namespace

TerminalReporter::TerminalReporter(std::FILE* out, TerminalReporterOptions options)
    : out_(out),
      options_(options),
      is_tty_(::isatty(::fileno(out)) == 1),
      buf_(std::make_unique<char[]>(kBufferSize)) {}

TerminalReporter::~TerminalReporter() { flush(); }

bool TerminalReporter::want_color(int fd) {
  if (::isatty(fd) != 1) return false;
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && no_color[0] != '\0') return false;
  const char* term = std::getenv("TERM");
  return term == nullptr || std::strcmp(term, "dumb") != 0;
}

void TerminalReporter::flush() {
  drain();
  std::fflush(out_);
}

void TerminalReporter::drain() {
  if (used_ > 0) std::fwrite(buf_.get(), 1, used_, out_);
  used_ = 0;
}

void TerminalReporter::put(std::string_view s) {
  if (s.size() > kBufferSize - used_) {
    drain();
    if (s.size() >= kBufferSize) {
      std::fwrite(s.data(), 1, s.size(), out_);
      return;
    }
  }
  std::memcpy(buf_.get() + used_, s.data(), s.size());
  used_ += s.size();
}

void TerminalReporter::put_colored(std::string_view s, const char* color) {
  if (options_.color && color != nullptr) {
    put(color);
    put(s);
    put(kReset);
  } else {
    put(s);
  }
}

void TerminalReporter::end_line() {
  if (used_ == kBufferSize) drain();
  buf_[used_++] = '\n';
  if (is_tty_) flush();
}

// localtime_r takes a lock and reads the zone; once per second is plenty.
void TerminalReporter::put_time(Timestamp ts) {
  if (!options_.timestamps) return;
  std::time_t t = std::chrono::system_clock::to_time_t(ts);
  if (t != clock_second_) {
    std::tm tm{};
    ::localtime_r(&t, &tm);
    std::strftime(clock_, sizeof clock_, "%H:%M:%S ", &tm);
    clock_second_ = t;
  }
  put(std::string_view(clock_, 9));
}

const std::string& TerminalReporter::prefix(size_t step, std::string_view name) {
  if (step >= prefixes_.size()) {
    prefixes_.resize(step + 1);
    names_.resize(step + 1);
  }
  std::string& p = prefixes_[step];
  if (p.empty() || names_[step] != name) {
    names_[step] = name;
    p = step_label(step, name, options_.color);
  }
  return p;
}

void TerminalReporter::notice(std::string_view text) {
  put_time(std::chrono::system_clock::now());
  put("boxcar: ");
  put(escape_for_terminal(text));
  end_line();
  flush();
}

void TerminalReporter::step_started(size_t step, std::string_view name, int attempt) {
  put_time(std::chrono::system_clock::now());
  put(prefix(step, name));
  put("started");
  if (attempt > 1) {
    put(" (attempt ");
    put(std::to_string(attempt));
    put(")");
  }
  end_line();
  flush();
}

void TerminalReporter::step_line(size_t step, std::string_view name, Timestamp ts,
                                 std::string_view line, bool cut) {
  if (options_.quiet) return;
  put_time(ts);
  // A step index names one step for the whole run: the per-line path skips the name check.
  if (step < prefixes_.size() && !prefixes_[step].empty()) put(prefixes_[step]);
  else put(prefix(step, name));
  if (step >= escapers_.size()) escapers_.resize(step + 1);
  scratch_.clear();
  escapers_[step].feed(line, scratch_);
  if (cut) escapers_[step].break_line(scratch_);
  else escapers_[step].end_line(scratch_);
  put(scratch_);
  end_line();
}

void TerminalReporter::step_finished(size_t step, const StepSummary& summary) {
  put_time(std::chrono::system_clock::now());
  put(prefix(step, summary.name));
  put_colored(status_text(summary), status_color(summary));
  if (ran(summary)) {
    put(" in ");
    put(format_duration(summary.duration));
  }
  if (!summary.reason.empty()) {
    put(": ");
    put(escape_for_terminal(summary.reason));
  }
  // bash -eo pipefail is what a step runs under by default; anything else is worth a word
  // (a root without bash: a failure inside a pipe does not fail the step).
  if (!summary.shell.empty() && summary.shell.rfind("/bin/bash --noprofile --norc -eo pipefail", 0) != 0) {
    put(" (shell: ");
    put(escape_for_terminal(summary.shell));
    put(")");
  }
  end_line();
  flush();
}

// The step's name is not passed here: its prefix is known from its started/line events.
void TerminalReporter::artifact(size_t step, std::string_view name, std::string_view /*path*/,
                                uint64_t bytes) {
  put_time(std::chrono::system_clock::now());
  if (step < prefixes_.size() && !prefixes_[step].empty()) put(prefixes_[step]);
  else put("boxcar: ");
  put("artifact ");
  put(escape_for_terminal(name));
  put(" (");
  put(format_size(bytes));
  put(")");
  end_line();
  flush();
}

void TerminalReporter::preview(size_t step, std::string_view name, std::string_view url,
                               std::string_view path_url, Timestamp until) {
  put_time(std::chrono::system_clock::now());
  if (step < prefixes_.size() && !prefixes_[step].empty()) put(prefixes_[step]);
  else put("boxcar: ");
  put("preview ");
  put(escape_for_terminal(name));
  put(": ");
  put(escape_for_terminal(url));
  put(" (or ");
  put(escape_for_terminal(path_url));
  put(")");
  if (until != Timestamp{}) {
    std::time_t t = std::chrono::system_clock::to_time_t(until);
    std::tm tm{};
    localtime_r(&t, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    put(" open until ");
    put(when);
  }
  end_line();
  flush();
}

void TerminalReporter::pipeline_finished(bool success, const std::vector<StepSummary>& steps,
                                         Millis duration) {
  std::vector<std::string> names, statuses, durations;
  size_t name_w = 4, status_w = 6, dur_w = 8;
  for (const StepSummary& s : steps) {
    names.push_back(escape_for_terminal(s.name));
    statuses.push_back(status_text(s));
    durations.push_back(ran(s) ? format_duration(s.duration) : "-");
    name_w = std::max(name_w, names.back().size());
    status_w = std::max(status_w, statuses.back().size());
    dur_w = std::max(dur_w, durations.back().size());
  }
  auto pad = [&](size_t used, size_t width) { put(std::string(width - used + 2, ' ')); };

  put("\n");
  if (options_.color) put(kBold);
  put("STEP");
  pad(4, name_w);
  put("STATUS");
  pad(6, status_w);
  put("DURATION");
  pad(8, dur_w);
  put("REASON");
  if (options_.color) put(kReset);
  end_line();
  for (size_t i = 0; i < steps.size(); ++i) {
    const StepSummary& s = steps[i];
    put(names[i]);
    pad(names[i].size(), name_w);
    put_colored(statuses[i], status_color(s));
    pad(statuses[i].size(), status_w);
    put(durations[i]);
    if (!s.reason.empty()) {
      pad(durations[i].size(), dur_w);
      put(escape_for_terminal(s.reason));
    }
    end_line();
  }
  put_colored(success ? "pipeline succeeded" : "pipeline failed", success ? kGreen : kRed);
  put(" in ");
  put(format_duration(duration));
  end_line();
  if (!options_.summary_note.empty()) {
    put("boxcar: ");
    put(options_.summary_note);
    end_line();
  }
  flush();
}

}  // namespace boxcar::agent
