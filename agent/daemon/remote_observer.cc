#include "agent/daemon/remote_observer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "base/beneath.h"
#include "base/link_target.h"
#include "base/sha256.h"
#include "base/terminal_escape.h"
#include "base/url.h"
#include "protocol/agent_protocol.h"

namespace boxcar::agent {

int64_t unix_ms_now() {
  return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

RemoteObserver::RemoteObserver(boost::asio::io_context& io, JobOutbox& outbox,
                               RemoteObserverOptions options)
    : io_(io), outbox_(outbox), options_(std::move(options)), timer_(io) {}

RemoteObserver::~RemoteObserver() { timer_.cancel(); }

void RemoteObserver::append(const std::string& step, int attempt, std::string_view line,
                            bool newline) {
  if (sealed_) return;
  Key key{step, attempt};
  if (pending_.empty() || pending_.back().first != key) pending_.push_back({key, {}});
  std::string& data = pending_.back().second;
  data.append(line);
  if (newline) data.push_back('\n');
  pending_bytes_ += line.size() + (newline ? 1 : 0);
  if (pending_bytes_ >= options_.chunk_bytes) {
    flush_logs();
    return;
  }
  if (!timer_armed_) {
    timer_armed_ = true;
    timer_.expires_after(options_.flush_interval);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      timer_armed_ = false;
      flush_logs();
    });
  }
}

void RemoteObserver::flush_logs() {
  if (timer_armed_) {
    timer_armed_ = false;
    timer_.cancel();
  }
  if (pending_.empty()) return;
  protocol::LogUpload upload;
  for (auto& [key, data] : pending_) {
    protocol::LogChunkWire chunk;
    chunk.step = key.first;
    chunk.attempt = key.second;
    chunk.seq = next_seq_[key]++;
    chunk.data = std::move(data);
    upload.chunks.push_back(std::move(chunk));
  }
  pending_.clear();
  pending_bytes_ = 0;
  outbox_.post("logs", protocol::to_json(upload));
}

std::vector<std::string> RemoteObserver::needs_of(size_t step) const {
  return step < needs_.size() ? needs_[step] : std::vector<std::string>{};
}

void RemoteObserver::job_line(std::string_view line) { append(kJobLogStep, 1, line, true); }

void RemoteObserver::notice(std::string_view text) { job_line(text); }

void RemoteObserver::step_started(size_t step, std::string_view name, int attempt) {
  attempt_[step] = attempt;
  names_[step] = std::string(name);
  if (sealed_) return;
  if (!started_at_.count(step)) started_at_[step] = unix_ms_now();
  flush_logs();
  protocol::StepUpdate u;
  u.name = std::string(name);
  u.state = "running";
  u.started_at = started_at_[step];
  if (attempt > 1) u.reason = "attempt " + std::to_string(attempt);
  u.needs = needs_of(step);
  outbox_.post("steps", protocol::to_json(u));
}

void RemoteObserver::step_line(size_t step, std::string_view name, Timestamp, std::string_view line,
                               bool cut) {
  auto it = attempt_.find(step);
  append(std::string(name), it == attempt_.end() ? 1 : it->second, line, !cut);
}

void RemoteObserver::step_finished(size_t step, const StepSummary& s) {
  if (sealed_) return;
  flush_logs();
  protocol::StepUpdate u;
  u.name = s.name;
  u.state = pipeline::to_string(s.state);
  if (s.exit_code >= 0) u.exit_code = s.exit_code;
  if (auto it = started_at_.find(step); it != started_at_.end()) u.started_at = it->second;
  u.finished_at = unix_ms_now();
  u.reason = s.reason;
  if (s.egress_refused > 0) u.egress_refused = static_cast<int64_t>(s.egress_refused);
  u.needs = needs_of(step);
  outbox_.post("steps", protocol::to_json(u));
}

void RemoteObserver::artifact(size_t, std::string_view name, std::string_view path, uint64_t bytes) {
  if (sealed_) return;
  // The path is a step's file name: escaped, so a newline in it cannot start a job line.
  std::string label = std::string(name) + ": artifact " + escape_for_terminal(path);
  if (options_.artifact_dir.empty()) {
    job_line(label + " (" + std::to_string(bytes) + " bytes)");
    return;
  }
  // Opened once, and the upload sends from this descriptor: the scheduler may replace the copy
  // (a later step collecting the same path) with a symlink, a FIFO or nothing before the
  // outbox gets to it. No symlink is followed on the way, and O_NONBLOCK keeps a FIFO from
  // blocking the open.
  unique_fd dir(::open(options_.artifact_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  unique_fd file = dir ? open_beneath(dir.get(), std::string(path), O_RDONLY | O_NONBLOCK) : unique_fd();
  if (!file && errno == ELOOP && dir) return upload_link(dir.get(), name, path, label);
  if (!file) {
    job_line(label + ": cannot open the collected copy: " + std::strerror(errno));
    return;
  }
  struct stat st {};
  if (::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    job_line(label + ": not a regular file, not uploaded");
    return;
  }
  uint64_t size = 0;
  auto digest = sha256_fd(file.get(), &size);
  if (!digest) {
    job_line(label + ": cannot read the collected copy: " + digest.error().message);
    return;
  }
  job_line(label + " (" + std::to_string(size) + " bytes, sha256 " + *digest + ")");
  outbox_.post_file("artifacts?path=" +
                        percent_encode(path, true) + "&sha256=" + *digest + "&step=" + percent_encode(name, true),
                    std::make_shared<const unique_fd>(std::move(file)), size);
}

// Collection kept only links that stay inside the step's set; checked again here, since the
// copy is read again by name: a link that reads as leaving the artifacts is never sent.
void RemoteObserver::upload_link(int dir, std::string_view name, std::string_view path,
                                 const std::string& label) {
  std::string rel(path);
  size_t slash = rel.rfind('/');
  unique_fd parent = open_beneath(dir, slash == std::string::npos ? "" : rel.substr(0, slash),
                                  O_PATH | O_DIRECTORY);
  char target[4096];
  ssize_t n = parent ? ::readlinkat(parent.get(), rel.substr(slash + 1).c_str(), target, sizeof target)
                     : -1;
  if (n <= 0 || n == static_cast<ssize_t>(sizeof target)) {
    job_line(label + ": cannot read the collected link: " + std::strerror(errno));
    return;
  }
  std::string text(target, static_cast<size_t>(n));
  if (!lexical_link_target(rel, text)) {
    job_line(label + ": a symlink pointing out of the artifacts, not uploaded");
    return;
  }
  job_line(label + " -> " + escape_for_terminal(text) + " (a link)");
  outbox_.post("artifacts?path=" + percent_encode(path, true) + "&link=" + percent_encode(text, true) +
                   "&step=" + percent_encode(name, true),
               boost::json::object{});
}

void RemoteObserver::pipeline_finished(bool, const std::vector<StepSummary>&, Millis) { flush_logs(); }

void RemoteObserver::preview(size_t step, std::string_view name, std::string_view url,
                             std::string_view path_url, Timestamp until) {
  std::string line = "preview " + std::string(name) + ": " + std::string(url) + " (or " +
                     std::string(path_url) + ")";
  if (until != Timestamp{}) {
    std::time_t t = std::chrono::system_clock::to_time_t(until);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char when[40];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    line += " open until " + std::string(when);
  }
  auto it = attempt_.find(step);
  auto named = names_.find(step);
  append(named == names_.end() ? kJobLogStep : named->second, it == attempt_.end() ? 1 : it->second,
         line, true);
  if (options_.on_preview) options_.on_preview(step, name, url, path_url, until);
}

void RemoteObserver::preview_closed(size_t step, std::string_view name) {
  if (options_.on_preview_closed) options_.on_preview_closed(step, name);
}

}  // namespace boxcar::agent
