// PreviewReporter: tells the server which previews of a job are open (POST previews, the whole
// set each time). While the job runs, its reports go through the job's outbox, in order with
// the job's other reports; once the job completed with previews still open, straight to the
// server, again every few seconds: the answer says whether the user cancelled them, and a
// server that stops hearing from the agent calls them closed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "http/http_client.h"
#include "agent/daemon/job_outbox.h"
#include "agent/grace.h"
#include "base/duration.h"
#include "protocol/agent_protocol.h"

namespace boxcar::agent {

struct PreviewReporterHandlers {
  // The server wants the previews closed: the user cancelled them (Grace::step), or it refused
  // the report (lease lost, agent refused: Grace::none, as nobody could find them any more).
  std::function<void(Grace)> close;
  std::function<void(const std::string&)> log;
};

class PreviewReporter {
 public:
  PreviewReporter(boost::asio::io_context& io, HttpClient& client, JobOutbox& outbox, int64_t job,
                  std::string lease_token, Millis interval, PreviewReporterHandlers handlers);
  ~PreviewReporter();

  // Preview `preview.name` of step `step` opened, or was reported again (its closing time).
  void opened(size_t step, protocol::PreviewWire preview);
  void closed(size_t step, std::string_view name);

  // While the job runs: each change goes through the outbox.
  void through_outbox();
  // The job is completing: nothing is sent until direct() or all_closed().
  void pause();
  // The job completed with previews open: reports go straight to the server, now and every
  // `interval`, until all_closed().
  void direct();
  // No preview of the job is open any more: the server hears so once (best effort, when it
  // last heard of some), and nothing more is sent.
  void all_closed();
  // The lease is gone: nothing more is sent.
  void stop();

 private:
  enum class Mode { idle, outbox, paused, direct, stopped };
  void report();
  void reported(const boost::system::error_code& ec, const HttpReply& res);
  protocol::PreviewSync sync() const;
  std::string path() const;

  boost::asio::io_context& io_;
  HttpClient& client_;
  JobOutbox& outbox_;
  int64_t job_;
  std::string lease_token_;
  Millis interval_;
  PreviewReporterHandlers handlers_;
  Mode mode_ = Mode::idle;
  std::map<std::pair<size_t, std::string>, protocol::PreviewWire> open_;  // by (step, name)
  boost::asio::steady_timer timer_;
  bool in_flight_ = false;
  bool again_ = false;            // the set changed while a report was on its way
  bool close_asked_ = false;      // the server asked to close them; said and done once
  bool server_sees_open_ = false;  // the last report sent listed some open preview
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace boxcar::agent
