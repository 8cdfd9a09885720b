// TerminalReporter: `boxcar run`'s human output: `[step] line`, step events, a summary table.
#pragma once

#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/run_observer.h"
#include "base/terminal_escape.h"

namespace boxcar::agent {

struct TerminalReporterOptions {
  bool color = false;       // ANSI colours; see TerminalReporter::want_color
  bool timestamps = false;  // prefix every line with local `HH:MM:SS `
  bool quiet = false;       // step events and the summary only; lines go to the log files
  std::string summary_note{};  // one line under the summary table (what protected the workspace)
};

// Step output is untrusted: only its SGR colours reach `out`; every other control sequence,
// control byte or \r (which would overwrite the [step] label) is shown escaped (see
// base/terminal_escape.h), on a terminal and when piped alike, since piped output usually ends
// on a terminal too (tee, less -R). Names and reasons are escaped the same way. The run
// directory's log files keep the bytes.
// Writes to `out` (not owned), which nothing else should write to while a run prints.
// Output is gathered in a buffer and written in large blocks, unless `out` is a terminal:
// then every line is written at once. flush() (after every chunk of step output), step events
// and the end of the run write the buffer out, so piped output stays live.
// Not thread-safe: called from the run's thread, like every RunObserver.
class TerminalReporter : public RunObserver {
 public:
  TerminalReporter(std::FILE* out, TerminalReporterOptions options);
  ~TerminalReporter() override;

  // True when `fd` is a terminal and NO_COLOR is unset or empty (https://no-color.org).
  static bool want_color(int fd);

  void notice(std::string_view text) override;
  void step_started(size_t step, std::string_view name, int attempt) override;
  void step_line(size_t step, std::string_view name, Timestamp ts, std::string_view line,
                 bool cut) override;
  void step_finished(size_t step, const StepSummary& summary) override;
  void artifact(size_t step, std::string_view name, std::string_view path,
                uint64_t bytes) override;
  void pipeline_finished(bool success, const std::vector<StepSummary>& steps,
                         Millis duration) override;
  void preview(size_t step, std::string_view name, std::string_view url, std::string_view path_url,
               Timestamp until) override;

  void flush() override;
  bool wants_lines() const override { return !options_.quiet; }

 private:
  const std::string& prefix(size_t step, std::string_view name);  // "[name] ", coloured
  void put(std::string_view s);
  void drain();  // the buffer to out_, without fflush
  void put_time(Timestamp ts);
  void put_colored(std::string_view s, const char* color);
  void end_line();  // '\n', then write out if the stream is a terminal

  std::FILE* out_;
  TerminalReporterOptions options_;
  bool is_tty_ = false;
  std::unique_ptr<char[]> buf_;
  size_t used_ = 0;
  std::vector<std::string> prefixes_;  // by step index
  std::vector<std::string> names_;     // what prefixes_ were made from
  std::vector<TerminalEscaper> escapers_;  // by step index: a sequence may span a cut line
  std::string scratch_;                // one escaped line
  std::time_t clock_second_ = -1;      // cached "HH:MM:SS " for this second
  char clock_[10] = {};
};

}  // namespace boxcar::agent
