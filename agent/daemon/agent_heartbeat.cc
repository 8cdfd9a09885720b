#include "agent/daemon/agent_heartbeat.h"

#include <boost/json/parse.hpp>

#include "protocol/agent_paths.h"
#include "protocol/agent_protocol.h"

namespace boxcar::agent {

Heartbeat::Heartbeat(boost::asio::io_context& io, HttpClient& client, int64_t job_id,
                     std::string lease, Millis interval, HeartbeatHandlers handlers)
    : client_(client),
      job_id_(job_id),
      lease_(std::move(lease)),
      interval_(interval),
      handlers_(std::move(handlers)),
      timer_(io) {}

Heartbeat::~Heartbeat() {
  *alive_ = false;
  stop();
}

void Heartbeat::start() { arm(interval_); }

void Heartbeat::stop() {
  stopped_ = true;
  timer_.cancel();
  if (in_flight_) client_.cancel(request_);
  in_flight_ = false;
}

void Heartbeat::arm(Millis delay) {
  if (stopped_) return;
  std::weak_ptr<bool> weak = alive_;
  timer_.expires_after(delay);
  timer_.async_wait([this, weak](const boost::system::error_code& ec) {
    if (ec || weak.expired() || stopped_) return;
    beat();
  });
}

void Heartbeat::beat() {
  in_flight_ = true;
  std::weak_ptr<bool> weak = alive_;
  auto body = protocol::to_json(protocol::HeartbeatRequest{});
  // A heartbeat that takes longer than an interval is as good as lost: the next one follows.
  request_ = client_.post_json(
      protocol::agent_job_path(job_id_, protocol::kHeartbeat), body, interval_,
      [this, weak](const boost::system::error_code& ec, HttpReply res) {
        if (weak.expired() || stopped_) return;
        in_flight_ = false;
        RemoteOutcome o = classify(ec, res.status, res.body);
        std::string prefix = "job " + std::to_string(job_id_) + ": heartbeat: ";
        switch (o.verdict) {
          case RemoteVerdict::ok: break;
          case RemoteVerdict::lease_lost:
            stop();
            if (handlers_.on_lost) handlers_.on_lost();
            return;
          case RemoteVerdict::auth_refused:
            stop();
            if (handlers_.on_auth) handlers_.on_auth(o);
            return;
          case RemoteVerdict::retry:
          case RemoteVerdict::rejected:
            // The lease outlives a few missed beats; try again sooner than usual.
            if (handlers_.log) handlers_.log(prefix + o.message);
            arm(std::max(Millis(200), interval_ / 3));
            return;
        }
        boost::system::error_code pec;
        auto parsed = boost::json::parse(res.body, pec);
        auto hb = pec ? Result<protocol::HeartbeatResponse>(Error{pec.message()})
                      : protocol::from_json<protocol::HeartbeatResponse>(parsed);
        if (!hb.ok()) {
          if (handlers_.log) handlers_.log(prefix + "unreadable answer: " + hb.error().message);
        } else if (hb->lost) {
          stop();
          if (handlers_.on_lost) handlers_.on_lost();
          return;
        } else if (hb->cancel && !cancel_seen_) {
          cancel_seen_ = true;
          if (handlers_.on_cancel) handlers_.on_cancel();
          if (weak.expired() || stopped_) return;
        }
        arm(interval_);
      },
      {{protocol::kLeaseHeader, lease_}});
}

}  // namespace boxcar::agent
