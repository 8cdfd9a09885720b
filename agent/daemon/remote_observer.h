// RemoteObserver: the RunObserver of a job run for a server. Lines are batched into log
// chunks, numbered per (step, attempt) from 0 and sent at most every `flush_interval` (or
// when `chunk_bytes` are waiting); step starts and ends become step updates. Everything goes
// through the job's JobOutbox, so a step's update follows the lines it printed. Each collected
// artifact (a file under `artifact_dir`) is opened once, hashed and queued as a raw upload of
// that open file, so a later step collecting the same path again cannot change what is sent;
// a symlink collection kept (its target inside the step's set) is sent as a link, its target
// text only, and one that reads as leaving the artifacts is not sent, nor is anything but a
// regular file or a link: a log line says so.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/daemon/job_outbox.h"
#include "agent/run_observer.h"
#include "protocol/agent_protocol.h"

namespace boxcar::agent {

using protocol::kJobLogStep;

struct RemoteObserverOptions {
  Millis flush_interval{200};
  size_t chunk_bytes = 256 * 1024;
  std::filesystem::path artifact_dir;  // where the scheduler collects artifacts; empty: no uploads
  // Previews opening (again, with their closing time) and closing: the job runner reports the
  // set of open ones to the server.
  std::function<void(size_t step, std::string_view name, std::string_view url,
                     std::string_view path_url, Timestamp until)> on_preview;
  std::function<void(size_t step, std::string_view name)> on_preview_closed;
};

class RemoteObserver : public RunObserver {
 public:
  RemoteObserver(boost::asio::io_context& io, JobOutbox& outbox, RemoteObserverOptions options);
  ~RemoteObserver() override;

  // The steps each step waits for (by index, as the scheduler numbers them; matrix cells by
  // their full names), sent with every update of that step so the server can draw the graph.
  void set_needs(std::vector<std::vector<std::string>> needs) { needs_ = std::move(needs); }
  // A line of the job's own log (not a step's).
  void job_line(std::string_view line);
  // Sends the lines held now.
  void flush_logs();
  // After the job's complete was posted the server takes no more reports: from now on lines,
  // notices and step updates are dropped (preview hooks still run).
  void seal() { flush_logs(); sealed_ = true; }

  void notice(std::string_view text) override;
  void step_started(size_t step, std::string_view name, int attempt) override;
  void step_line(size_t step, std::string_view name, Timestamp ts, std::string_view line,
                 bool cut) override;
  void step_finished(size_t step, const StepSummary& summary) override;
  void artifact(size_t step, std::string_view name, std::string_view path, uint64_t bytes) override;
  void pipeline_finished(bool success, const std::vector<StepSummary>& steps, Millis duration) override;
  // Written to the step's log (so `boxcar logs` shows the URLs) and passed on.
  void preview(size_t step, std::string_view name, std::string_view url, std::string_view path_url,
               Timestamp until) override;
  void preview_closed(size_t step, std::string_view name) override;

 private:
  using Key = std::pair<std::string, int>;  // step name, attempt
  void append(const std::string& step, int attempt, std::string_view line, bool newline);
  std::vector<std::string> needs_of(size_t step) const;
  void upload_link(int dir, std::string_view name, std::string_view path, const std::string& label);

  boost::asio::io_context& io_;
  JobOutbox& outbox_;
  RemoteObserverOptions options_;
  std::map<Key, int64_t> next_seq_;
  std::vector<std::pair<Key, std::string>> pending_;  // in arrival order, one entry per key run
  size_t pending_bytes_ = 0;
  std::map<size_t, int> attempt_;                     // step index -> current attempt
  std::map<size_t, int64_t> started_at_;              // step index -> unix ms
  std::map<size_t, std::string> names_;               // step index -> name
  std::vector<std::vector<std::string>> needs_;       // step index -> the names it needs
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
  bool sealed_ = false;
};

int64_t unix_ms_now();

}  // namespace boxcar::agent
