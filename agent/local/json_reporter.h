// JsonReporter: `boxcar run --json`: one JSON object per line for every run event.
//
//   {"event":"step_started","step":"build","attempt":1,"ts":"2026-01-02T03:04:05.678Z"}
//   {"event":"log","step":"build","ts":"...","line":"...","cut":false}
//   {"event":"step_finished","step":"build","status":"failed","duration_ms":1200,
//    "exit_code":2,"reason":"exit code 2","attempts":1,"allow_failure":false,"ts":"..."}
//   {"event":"artifact","step":"build","name":"app","path":"...","bytes":123,"ts":"..."}
//   {"event":"preview","step":"web","name":"web","url":"http://8080-...","path_url":"...",
//    "until":null|"2026-...","ts":"..."}
//   {"event":"notice","message":"...","ts":"..."}
//   {"event":"pipeline_finished","status":"success","duration_ms":4200,
//    "steps":[{"step":"build","status":"success",...as step_finished}],"ts":"..."}
//
// exit_code is null when the step did not exit by itself. Strings are valid UTF-8: control
// characters are escaped and every byte that is not part of valid UTF-8 becomes U+FFFD.
#pragma once

#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "agent/run_observer.h"

namespace boxcar::agent {

// Appends `text` as a JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view text);

// Writes to `out` (not owned); buffered like TerminalReporter (see there). Not thread-safe.
class JsonReporter : public RunObserver {
 public:
  explicit JsonReporter(std::FILE* out);
  ~JsonReporter() override;

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

 private:
  void begin(std::string_view event);  // `{"event":"..."`
  void step_fields(const StepSummary& s);
  void put_ts(Timestamp ts);           // `,"ts":"..."`
  void end(bool flush_now);            // `}` and a newline
  void remember(size_t step, std::string_view name);

  std::FILE* out_;
  bool is_tty_ = false;
  std::string buf_;
  std::vector<std::string> names_;  // by step index, for artifact events
  std::time_t clock_second_ = -1;   // cached "YYYY-MM-DDTHH:MM:SS" for this second
  char clock_[24] = {};
};

}  // namespace boxcar::agent
