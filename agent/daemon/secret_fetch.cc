#include "agent/daemon/secret_fetch.h"

#include "protocol/agent_paths.h"

namespace boxcar::agent {

SecretFetch::SecretFetch(boost::asio::io_context& io, HttpClient& client, int64_t job_id,
                         std::string lease, std::vector<std::string> names, Done done, int attempts)
    : client_(client),
      job_id_(job_id),
      lease_(std::move(lease)),
      names_(std::move(names)),
      done_(std::move(done)),
      attempts_left_(attempts),
      retry_(io) {}

SecretFetch::~SecretFetch() {
  *alive_ = false;
  if (request_ != 0) client_.cancel(request_);
}

void SecretFetch::start() { send(); }

void SecretFetch::send() {
  --attempts_left_;
  std::weak_ptr<bool> weak = alive_;
  request_ = client_.post_json(
      protocol::agent_job_path(job_id_, protocol::kSecrets),
      protocol::to_json(protocol::SecretsRequest{names_}), Millis(30'000),
      [this, weak](const boost::system::error_code& ec, HttpReply reply) {
        if (weak.expired()) return;
        request_ = 0;
        RemoteOutcome o = classify(ec, reply.status, reply.body);
        if (o.verdict == RemoteVerdict::ok) {
          return done_(protocol::from_json_text<protocol::SecretsResponse>(reply.body), o.verdict);
        }
        if (o.verdict != RemoteVerdict::retry || attempts_left_ <= 0) {
          return done_(Error{"the server did not give the job's secrets: " + o.message}, o.verdict);
        }
        retry_.expires_after(backoff_.next());
        retry_.async_wait([this, weak](const boost::system::error_code& tec) {
          if (!tec && !weak.expired()) send();
        });
      },
      {{protocol::kLeaseHeader, lease_}});
}

}  // namespace boxcar::agent
