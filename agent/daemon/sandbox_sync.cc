#include "agent/daemon/sandbox_sync.h"

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>

#include "protocol/agent_paths.h"

namespace boxcar::agent {

namespace asio = boost::asio;

namespace {
// A sync that takes longer than this is as good as lost: the next one carries the same news.
constexpr Millis kSyncTimeout{10'000};
}  // namespace

SandboxSync::SandboxSync(asio::io_context& io, HttpClient& client, SandboxSource& source, Millis interval,
                         SandboxSyncHandlers handlers)
    : io_(io), client_(client), source_(source), interval_(interval), handlers_(std::move(handlers)), timer_(io) {}

SandboxSync::~SandboxSync() {
  *alive_ = false;
  stop();
}

void SandboxSync::start() {
  stopped_ = false;
  if (in_flight_) {
    again_ = true;
    return;
  }
  send();
}

void SandboxSync::changed() {
  if (stopped_) return;
  if (in_flight_) {
    again_ = true;
    return;
  }
  // While the server is unreachable the timer's next attempt carries the change.
  if (backoff_.failures() > 0 || posted_) return;
  posted_ = true;
  std::weak_ptr<bool> weak = alive_;
  asio::post(io_, [this, weak] {
    if (weak.expired()) return;
    posted_ = false;
    if (!stopped_ && !in_flight_) send();
  });
}

void SandboxSync::stop() {
  stopped_ = true;
  timer_.cancel();
  if (in_flight_) client_.cancel(request_);
  in_flight_ = false;
}

void SandboxSync::arm(Millis delay) {
  if (stopped_) return;
  std::weak_ptr<bool> weak = alive_;
  timer_.expires_after(delay);
  timer_.async_wait([this, weak](const boost::system::error_code& ec) {
    if (ec || weak.expired() || stopped_ || in_flight_) return;
    send();
  });
}

void SandboxSync::send() {
  if (stopped_) return;
  if (handlers_.ready && !handlers_.ready()) return arm(interval_);
  in_flight_ = true;
  again_ = false;
  timer_.cancel();
  std::weak_ptr<bool> weak = alive_;
  request_ = client_.post_json(std::string(protocol::kAgentSandboxSyncPath), protocol::to_json(source_.snapshot()),
                               kSyncTimeout, [this, weak](const boost::system::error_code& ec, HttpReply res) {
                                 if (weak.expired() || stopped_) return;
                                 answered(ec, res);
                               });
}

void SandboxSync::answered(const boost::system::error_code& ec, const HttpReply& res) {
  in_flight_ = false;
  RemoteOutcome o = classify(ec, res.status, res.body);
  if (o.verdict == RemoteVerdict::auth_refused) {
    if (handlers_.on_auth) handlers_.on_auth(o);
    return arm(interval_);
  }
  Result<protocol::SandboxSyncAnswer> answer = Error{o.message};
  if (o.verdict == RemoteVerdict::ok) {
    boost::system::error_code pec;
    auto parsed = boost::json::parse(res.body, pec);
    answer = pec ? Result<protocol::SandboxSyncAnswer>(Error{"unreadable answer: " + pec.message()})
                 : protocol::sandbox_sync_answer_from_json(parsed);
    if (!answer.ok()) answer = Error{"unreadable answer: " + answer.error().message};
  }
  if (!answer.ok()) {
    // A server without sandboxes (404) is told again later, like an unreachable one.
    Millis delay = backoff_.next();
    if (answer.error().message != last_failure_ && handlers_.log) {
      handlers_.log("sandbox sync: " + answer.error().message + "; retrying in " + format_duration(delay) +
                    ", backing off");
    }
    last_failure_ = answer.error().message;
    return arm(delay);
  }
  if (!last_failure_.empty() && handlers_.log) handlers_.log("sandbox sync: reached the server again");
  last_failure_.clear();
  backoff_.reset();
  if (handlers_.on_accepted) handlers_.on_accepted();
  for (const std::string& id : answer->deleted) {
    if (handlers_.log) handlers_.log("sandbox " + id + ": deleted on the server; removing it");
    source_.remove(id);
    if (stopped_) return;
  }
  if (again_) {
    again_ = false;
    return changed();
  }
  arm(interval_);
}

}  // namespace boxcar::agent
