// StepOutput: one step's log pipeline. Raw bytes from stdout/stderr go in; secrets are masked,
// lines split (long ones cut into pieces), the total capped, and each line goes to the step's
// log file and to the RunObserver. Memory stays bounded whatever the step prints.
//
// The log file holds the masked output exactly as printed (stdout and stderr in one file, in
// the order their lines completed), a final line without a newline gets one, and a truncation
// notice ends it when the limit was reached. Beside it, `<log_file>.times` (made with its
// first record, so a silent step has none) indexes the time: one text record per write() (or
// close()) that completed lines,
//     <byte offset in the log> <unix time in milliseconds>\n
// meaning the bytes from that offset up to the next record's offset were completed at that
// time. A line's time is the time of the record holding its last byte; this is the timestamp
// step_line() was given for it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/run_observer.h"
#include "executors/executor.h"

namespace boxcar::agent {

struct StepOutputOptions {
  size_t step = 0;
  std::string name;
  std::filesystem::path log_file;        // created (truncated); empty = no file
  // With a directory fd, `log_file` is a name in that directory and the log (and its .times)
  // are created fresh there (base/beneath.h): a step that can write the directory cannot
  // redirect the log into another file.
  int log_dir = -1;
  std::vector<std::string> secrets;      // values to mask as ***, also in base64 form
  uint64_t limit = 64ull << 20;          // bytes of output kept; then a truncation notice
  size_t max_line = 64 * 1024;           // longer lines are cut into pieces of this size
};

class StepOutput {
 public:
  StepOutput(StepOutputOptions options, RunObserver& observer);
  ~StepOutput();

  // Feeds bytes as they came from the process. A secret split across two writes is masked.
  void write(executors::OutputStream stream, std::string_view bytes);
  // "boxcar: <text>" as a line of boxcar's own, before the step's output (ignored once output
  // came): outside the limit and the masking. Which shell ran, for one.
  void notice(std::string_view text);
  // Flushes partial lines and held-back bytes; writes the truncation notice if any, then
  // `note` as a last line of boxcar's own ("boxcar: <note>"), kept even past the limit: why the
  // step's network refused something is worth the line.
  void close(std::string_view note = {});

  uint64_t bytes_seen() const;  // before the cap
  bool truncated() const;
  // Bytes of one stream's unfinished line held in memory; never more than options.max_line.
  size_t pending_line_bytes(executors::OutputStream stream) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace boxcar::agent
