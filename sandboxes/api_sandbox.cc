#include "sandboxes/api_sandbox.h"

namespace boxcar::sandboxes {

std::vector<std::string> ApiSandbox::base_env() const {
  std::map<std::string, std::string> env{
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOME", "/root"},
      {"LANG", "C.UTF-8"},
      {"TERM", "xterm-256color"},
      {"HOSTNAME", spec_.id},
      {"BOXCAR_SANDBOX", spec_.id},
  };
  for (const auto& [k, v] : spec_.env) env[k] = v;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

void ApiSandbox::publish_exit(const std::string& process, const executors::Outcome& outcome) {
  if (outcome.kind == executors::Outcome::Kind::oom) events_.publish("oom", boost::json::object{{"process", process}});
  boost::json::object data{{"id", process}, {"outcome", std::string(executors::to_string(outcome.kind))}};
  using Kind = executors::Outcome::Kind;
  if (outcome.kind == Kind::ok || outcome.kind == Kind::failed) data["exit_code"] = outcome.exit_code;
  else data["exit_code"] = nullptr;
  if (outcome.kind == Kind::signaled) data["signal"] = outcome.signal;
  events_.publish("process_exit", std::move(data));
}

void ApiSandbox::touch() {
  activity_->last = std::chrono::steady_clock::now();
  activity_->last_wall = std::chrono::system_clock::now();
}

std::shared_ptr<void> ApiSandbox::activity_lease() {
  touch();
  ++activity_->leases;
  std::weak_ptr<Activity> weak = activity_;
  // The lease's end is activity too: idle time counts from when the stream closed.
  return std::shared_ptr<void>(nullptr, [weak](void*) {
    if (auto a = weak.lock()) {
      --a->leases;
      a->last = std::chrono::steady_clock::now();
      a->last_wall = std::chrono::system_clock::now();
    }
  });
}

}  // namespace boxcar::sandboxes
