#include "agent/daemon/job_outbox.h"

#include <boost/asio/post.hpp>

#include "base/size.h"
#include "protocol/agent_paths.h"
#include "protocol/agent_protocol.h"

namespace boxcar::agent {

namespace asio = boost::asio;

JobOutbox::JobOutbox(asio::io_context& io, HttpClient& client, int64_t job_id, std::string lease,
                     JobOutboxHandlers handlers, Millis request_timeout)
    : io_(io),
      client_(client),
      job_id_(job_id),
      lease_(std::move(lease)),
      handlers_(std::move(handlers)),
      timeout_(request_timeout),
      retry_timer_(io) {}

JobOutbox::~JobOutbox() {
  *alive_ = false;
  if (in_flight_) client_.cancel(request_id_);
}

void JobOutbox::post(const std::string& what, boost::json::value body) {
  if (stopped_) return;
  queue_.push_back({what, std::move(body), {}, 0});
  if (!in_flight_) send_next();
}

void JobOutbox::post_file(const std::string& what, SharedFd file, uint64_t bytes) {
  if (stopped_) return;
  queue_.push_back({what, nullptr, std::move(file), bytes});
  if (!in_flight_) send_next();
}

void JobOutbox::when_drained(std::function<void()> done) {
  drained_ = std::move(done);
  std::weak_ptr<bool> weak = alive_;
  asio::post(io_, [this, weak] {
    if (!weak.expired()) settle();
  });
}

void JobOutbox::stop() {
  stopped_ = true;
  queue_.clear();
  drained_ = nullptr;
  retry_timer_.cancel();
  if (in_flight_) client_.cancel(request_id_);
  in_flight_ = false;
}

void JobOutbox::settle() {
  if (stopped_ || in_flight_ || !queue_.empty() || !drained_) return;
  auto done = std::move(drained_);
  drained_ = nullptr;
  done();
}

std::vector<JobOutbox::Item> JobOutbox::instead_of_refused_logs(const Item& refused,
                                                                const std::string& why) const {
  auto upload = protocol::from_json<protocol::LogUpload>(refused.body);
  if (!upload || upload->chunks.empty() || refused.refusals >= 2) return {};
  std::vector<Item> instead;
  if (upload->chunks.size() > 1) {
    // One bad chunk must not take the others with it.
    for (auto& chunk : upload->chunks) {
      protocol::LogUpload one;
      one.chunks.push_back(std::move(chunk));
      instead.push_back({"logs", protocol::to_json(one), {}, 0, 1});
    }
    return instead;
  }
  // The same (step, attempt, seq): the step's log says, where the lines were, that they are gone.
  protocol::LogChunkWire note = std::move(upload->chunks.front());
  std::string reason = why.size() > 300 ? why.substr(0, 300) + "..." : why;
  note.data = "boxcar: " + format_size(note.data.size()) + " of this step's output " +
              "were lost: the server refused them (" + reason + ")\n";
  protocol::LogUpload one;
  one.chunks.push_back(std::move(note));
  instead.push_back({"logs", protocol::to_json(one), {}, 0, 2});
  return instead;
}

void JobOutbox::send_next() {
  if (stopped_ || in_flight_) return;
  if (queue_.empty()) return settle();
  in_flight_ = true;
  const Item& item = queue_.front();
  std::string path = protocol::agent_job_path(job_id_, item.what);
  std::weak_ptr<bool> weak = alive_;
  auto answered = [this, weak](const boost::system::error_code& ec, HttpReply res) {
        if (weak.expired() || stopped_) return;
        in_flight_ = false;
        // A body that cannot be read here would fail the same way on every retry.
        RemoteOutcome o = res.local_error.empty()
                              ? classify(ec, res.status, res.body)
                              : RemoteOutcome{RemoteVerdict::rejected, res.local_error};
        const std::string what = queue_.front().what;
        switch (o.verdict) {
          case RemoteVerdict::ok:
            backoff_.reset();
            queue_.pop_front();
            send_next();
            return;
          case RemoteVerdict::rejected: {
            Item refused = std::move(queue_.front());
            queue_.pop_front();
            std::vector<Item> instead;
            if (what == "logs") instead = instead_of_refused_logs(refused, o.message);
            if (handlers_.log) {
              handlers_.log("job " + std::to_string(job_id_) + ": " + what +
                            (instead.empty() ? " dropped: "
                             : refused.refusals == 0 ? " refused, sent again chunk by chunk: "
                                                     : " chunk refused, replaced by a note: ") +
                            o.message);
            }
            for (auto it = instead.rbegin(); it != instead.rend(); ++it) {
              queue_.push_front(std::move(*it));
            }
            send_next();
            return;
          }
          case RemoteVerdict::retry: {
            Millis delay = backoff_.next();
            if (handlers_.log) {
              handlers_.log("job " + std::to_string(job_id_) + ": " + what + " upload failed (" +
                            o.message + "); retrying in " + format_duration(delay));
            }
            in_flight_ = true;  // the head item stays in flight until the retry
            retry_timer_.expires_after(delay);
            retry_timer_.async_wait([this, weak](const boost::system::error_code& tec) {
              if (tec || weak.expired() || stopped_) return;
              in_flight_ = false;
              send_next();
            });
            return;
          }
          case RemoteVerdict::lease_lost:
          case RemoteVerdict::auth_refused: {
            auto on_fatal = handlers_.on_fatal;
            stop();
            if (on_fatal) on_fatal(o);
            return;
          }
        }
      };
  if (!item.file) {
    request_id_ = client_.post_json(path, item.body, timeout_, std::move(answered),
                                    {{protocol::kLeaseHeader, lease_}});
  } else {
    // A file gets the usual deadline plus time for its bytes at a slow 1 MiB/s.
    Millis timeout = timeout_ + Millis(static_cast<int64_t>(item.bytes >> 10) / 1024 * 1000);
    request_id_ = client_.post_file(path, item.file, item.bytes, timeout, std::move(answered),
                                    {{protocol::kLeaseHeader, lease_}});
  }
}

}  // namespace boxcar::agent
