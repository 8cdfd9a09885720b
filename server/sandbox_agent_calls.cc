#include "server/sandbox_agent_calls.h"

#include <map>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "base/url.h"
#include "protocol/sandbox_api.h"

namespace boxcar::server {

namespace net = boost::asio;

struct SandboxAgentCalls::Impl {
  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work{io.get_executor()};
  std::map<std::string, std::unique_ptr<HttpClient>> clients;  // by endpoint + " " + key
  std::thread thread;
};

SandboxAgentCalls::SandboxAgentCalls() : impl_(std::make_shared<Impl>()) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

SandboxAgentCalls::~SandboxAgentCalls() {
  net::post(impl_->io, [impl = impl_.get()] { impl->clients.clear(); });
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
  impl_->clients.clear();
}

void SandboxAgentCalls::call(const SandboxAgentRecord& agent, const std::string& owner,
                             const std::string& method, const std::string& path,
                             std::string json_body, Millis timeout,
                             std::function<void(const boost::system::error_code&, HttpReply)> done) {
  net::post(impl_->io, [impl = impl_.get(), agent, owner, method, path,
                        body = std::move(json_body), timeout, done = std::move(done)]() mutable {
    std::string key = agent.endpoint + " " + agent.key;
    auto it = impl->clients.find(key);
    if (it == impl->clients.end()) {
      auto url = parse_server_url(agent.endpoint);
      if (!url) {
        HttpReply reply;
        reply.local_error = "the agent's endpoint " + agent.endpoint + ": " + url.error().message;
        return done(make_error_code(boost::system::errc::invalid_argument), std::move(reply));
      }
      // A new key for an endpoint: the agent restarted, and its old client is of no use.
      for (auto old = impl->clients.begin(); old != impl->clients.end();) {
        old = old->first.starts_with(agent.endpoint + " ") ? impl->clients.erase(old) : std::next(old);
      }
      it = impl->clients.emplace(key, std::make_unique<HttpClient>(impl->io, *url, agent.key)).first;
    }
    HttpHeaders headers = {{protocol::kOwnerHeader, owner}};
    std::string content_type = body.empty() ? "" : "application/json";
    it->second->send(method, path, std::move(body), content_type, timeout,
                     std::move(done), headers);
  });
}

}  // namespace boxcar::server
