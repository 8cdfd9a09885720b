#include "agent/daemon/preview_reporter.h"

#include "agent/daemon/remote_errors.h"
#include "protocol/agent_paths.h"

namespace boxcar::agent {

PreviewReporter::PreviewReporter(boost::asio::io_context& io, HttpClient& client, JobOutbox& outbox, int64_t job,
                                 std::string lease_token, Millis interval, PreviewReporterHandlers handlers)
    : io_(io),
      client_(client),
      outbox_(outbox),
      job_(job),
      lease_token_(std::move(lease_token)),
      interval_(interval),
      handlers_(std::move(handlers)),
      timer_(io) {}

PreviewReporter::~PreviewReporter() {
  *alive_ = false;
  timer_.cancel();
}

void PreviewReporter::opened(size_t step, protocol::PreviewWire preview) {
  std::string name = preview.name;
  open_[{step, std::move(name)}] = std::move(preview);
  report();
}

void PreviewReporter::closed(size_t step, std::string_view name) {
  open_.erase({step, std::string(name)});
  report();
}

void PreviewReporter::through_outbox() { mode_ = Mode::outbox; }
void PreviewReporter::pause() {
  if (mode_ != Mode::stopped) mode_ = Mode::paused;
}

void PreviewReporter::direct() {
  if (mode_ == Mode::stopped) return;
  mode_ = Mode::direct;
  report();
}

void PreviewReporter::all_closed() {
  if (mode_ == Mode::stopped) return;
  mode_ = Mode::stopped;
  timer_.cancel();
  // Without it the server calls them closed only when the reports have stopped for a while.
  if (!server_sees_open_) return;
  server_sees_open_ = false;
  client_.post_json(path(), protocol::to_json(protocol::PreviewSync{{}}), Millis(10'000),
                    [](const boost::system::error_code&, HttpReply) {}, {{protocol::kLeaseHeader, lease_token_}});
}

void PreviewReporter::stop() {
  mode_ = Mode::stopped;
  timer_.cancel();
}

protocol::PreviewSync PreviewReporter::sync() const {
  protocol::PreviewSync s{{}};
  for (const auto& [key, w] : open_) s.previews.push_back(w);
  return s;
}

std::string PreviewReporter::path() const { return protocol::agent_job_path(job_, protocol::kPreviews); }

void PreviewReporter::report() {
  if (mode_ == Mode::outbox) {
    server_sees_open_ = !open_.empty();
    outbox_.post("previews", protocol::to_json(sync()));
    return;
  }
  if (mode_ != Mode::direct) return;
  if (in_flight_) {
    again_ = true;
    return;
  }
  in_flight_ = true;
  again_ = false;
  server_sees_open_ = !open_.empty();
  timer_.cancel();
  std::weak_ptr<bool> weak = alive_;
  client_.post_json(path(), protocol::to_json(sync()), Millis(10'000),
                    [this, weak](const boost::system::error_code& ec, HttpReply res) {
                      if (!weak.expired()) reported(ec, res);
                    },
                    {{protocol::kLeaseHeader, lease_token_}});
}

void PreviewReporter::reported(const boost::system::error_code& ec, const HttpReply& res) {
  if (mode_ != Mode::direct) {
    in_flight_ = false;
    return;
  }
  // in_flight_ stays set through close(): the report the closing previews ask for waits as
  // again_ and is sent below, once, instead of a second one racing this answer's timer.
  RemoteOutcome o = classify(ec, res.status, res.body);
  if (o.verdict == RemoteVerdict::ok) {
    auto answer = protocol::from_json_text<protocol::PreviewSyncResponse>(res.body);
    if (answer.ok() && answer->close && !close_asked_) {
      close_asked_ = true;  // every later answer says so again while they close
      if (handlers_.log) handlers_.log("closing its previews: cancelled on the server");
      handlers_.close(Grace::step);
    }
  } else if (o.verdict == RemoteVerdict::lease_lost || o.verdict == RemoteVerdict::auth_refused) {
    if (handlers_.log) handlers_.log("closing its previews: the server refused the report (" + o.message + ")");
    handlers_.close(Grace::none);
  }
  in_flight_ = false;
  // close() may have closed the last one, and all_closed() stopped the reports.
  if (mode_ != Mode::direct) return;
  if (again_) return report();
  std::weak_ptr<bool> weak = alive_;
  timer_.expires_after(interval_);
  timer_.async_wait([this, weak](const boost::system::error_code& tec) {
    if (!tec && !weak.expired()) report();
  });
}

}  // namespace boxcar::agent
