#include "testing/fake_server.h"

#include "base/sha256.h"
#include "protocol/agent_paths.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace boxcar::agent::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

std::string FakeJob::log(const std::string& step, int attempt) const {
  std::string out;
  for (const auto& [key, data] : logs) {
    if (std::get<0>(key) == step && std::get<1>(key) == attempt) out += data;
  }
  return out;
}

std::optional<protocol::StepUpdate> FakeJob::last_step(const std::string& name) const {
  std::optional<protocol::StepUpdate> out;
  for (const auto& s : steps) {
    if (s.name == name) out = s;
  }
  return out;
}

FakeServer::FakeServer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

FakeServer::~FakeServer() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  {
    std::lock_guard lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  cv_.notify_all();
  for (auto& t : connections_) t.join();
}

std::string FakeServer::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

void FakeServer::enqueue(protocol::JobSpec job) {
  std::lock_guard lock(mu_);
  queue_.push_back(std::move(job));
  cv_.notify_all();
}

void FakeServer::enqueue_unreadable(int64_t id, std::string body) {
  std::lock_guard lock(mu_);
  unreadable_[id] = std::move(body);
  protocol::JobSpec job;
  job.id = id;
  queue_.push_back(std::move(job));
  cv_.notify_all();
}

void FakeServer::fail_log_uploads(int n) {
  std::lock_guard lock(mu_);
  fail_logs_ = n;
}

void FakeServer::refuse_logs_containing(std::string marker) {
  std::lock_guard lock(mu_);
  refuse_logs_marker_ = std::move(marker);
}

int FakeServer::refused_log_uploads() {
  std::lock_guard lock(mu_);
  return refused_logs_;
}

void FakeServer::fail_artifact_uploads(int n) {
  std::lock_guard lock(mu_);
  fail_artifacts_ = n;
}

void FakeServer::set_cancel(int64_t id) {
  std::lock_guard lock(mu_);
  jobs_[id].cancel = true;
}

void FakeServer::set_lost(int64_t id) {
  std::lock_guard lock(mu_);
  jobs_[id].lost = true;
}

FakeServer::Grant FakeServer::grant(int64_t id) {
  std::lock_guard lock(mu_);
  std::string credential = std::to_string(credentials_.size() + 1) + "." + std::string(64, 'e');
  credentials_[credential] = "granted";
  jobs_[id].agent = "granted";
  jobs_[id].lease = "granted-lease-" + std::to_string(id);
  return {credential, jobs_[id].lease};
}

void FakeServer::revoke(const std::string& name) {
  std::lock_guard lock(mu_);
  revoked_.insert(name);
  std::erase_if(credentials_, [&](const auto& c) { return c.second == name; });
}

std::vector<std::string> FakeServer::registrations() {
  std::lock_guard lock(mu_);
  return registrations_;
}

bool FakeServer::wait_registrations(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return registrations_.size() >= n; });
}

std::vector<FakeServer::SandboxSyncSeen> FakeServer::sandbox_syncs() {
  std::lock_guard lock(mu_);
  return sandbox_syncs_;
}

void FakeServer::delete_sandbox(std::string id) {
  std::lock_guard lock(mu_);
  deleted_sandboxes_.push_back(std::move(id));
}

void FakeServer::fail_sandbox_syncs(int n) {
  std::lock_guard lock(mu_);
  fail_sandbox_syncs_ = n;
}

FakeJob FakeServer::job(int64_t id) {
  std::lock_guard lock(mu_);
  return jobs_[id];
}

int FakeServer::jobs_claimed() {
  std::lock_guard lock(mu_);
  return claimed_;
}

size_t FakeServer::queued() {
  std::lock_guard lock(mu_);
  return queue_.size();
}

bool FakeServer::wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, pred);
}

bool FakeServer::wait_job(int64_t id, const std::function<bool(const FakeJob&)>& pred,
                          std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return pred(jobs_[id]); });
}

void FakeServer::accept_loop() {
  while (!stopping_) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) return;
      continue;
    }
    std::lock_guard lock(mu_);
    open_fds_.insert(fd);
    connections_.emplace_back([this, fd] { serve(fd); });
  }
}

void FakeServer::serve(int fd) {
  asio::io_context ioc;
  asio::ip::tcp::socket sock(ioc, asio::ip::tcp::v4(), fd);
  beast::flat_buffer buf;
  for (;;) {
    http::request<http::string_body> req;
    beast::error_code ec;
    http::read(sock, buf, req, ec);
    if (ec) break;
    Answer a = handle(std::string(req.target()), std::string(req[http::field::authorization]),
                      std::string(req[protocol::kLeaseHeader]), req.body(), fd);
    http::response<http::string_body> res{static_cast<http::status>(a.status), 11};
    res.set(http::field::content_type, "application/json");
    for (const auto& [name, value] : a.headers) res.set(name, value);
    res.body() = a.body;
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    http::write(sock, res, ec);
    if (ec || !req.keep_alive()) break;
  }
  std::lock_guard lock(mu_);
  open_fds_.erase(fd);
  beast::error_code ignored;
  sock.close(ignored);
}

FakeServer::Answer FakeServer::register_agent(const std::string& auth, const std::string& body) {
  if (auth != "Bearer " + token) return {401, R"({"error":"bad registration token"})"};
  boost::system::error_code pec;
  json::value in = json::parse(body, pec);
  if (pec) return {400, R"({"error":"bad json"})"};
  auto req = protocol::from_json<protocol::RegisterRequest>(in);
  if (!req.ok()) return {400, "{}"};
  std::lock_guard lock(mu_);
  registrations_.push_back(req->name);
  if (revoked_.count(req->name)) return {409, R"({"error":"that agent name was revoked"})"};
  for (const auto& [c, name] : credentials_) {
    if (name == req->name) return {409, R"({"error":"that agent name is taken"})"};
  }
  int64_t id = static_cast<int64_t>(registrations_.size());
  std::string credential = std::to_string(id) + "." + std::string(63, 'c') + std::to_string(id % 10);
  credentials_[credential] = req->name;
  cv_.notify_all();
  return {201, json::serialize(protocol::to_json(protocol::RegisterResponse{id, req->name, credential}))};
}

FakeServer::Answer FakeServer::handle(const std::string& target, const std::string& auth,
                                      const std::string& lease, const std::string& body, int fd) {
  if (target == protocol::kAgentRegisterPath) return register_agent(auth, body);
  std::string agent;
  {
    std::lock_guard lock(mu_);
    auto it = auth.rfind("Bearer ", 0) == 0 ? credentials_.find(auth.substr(7)) : credentials_.end();
    if (it == credentials_.end()) return {401, R"({"error":"bad agent credential"})"};
    agent = it->second;
  }
  // A job's reports must carry the lease token its claim handed out.
  auto wrong_lease = [&](int64_t id) {
    std::lock_guard lock(mu_);
    FakeJob& job = jobs_[id];
    if (job.agent == agent && !job.lease.empty() && job.lease == lease) return false;
    ++job.wrong_lease;
    cv_.notify_all();
    return true;
  };
  if (size_t q = target.find("/artifacts?"); q != std::string::npos) {
    int64_t id = std::stoll(target.substr(protocol::kAgentJobsPrefix.size()));
    if (wrong_lease(id)) return {409, R"({"error":"lease lost"})"};
    std::map<std::string, std::string> query;
    std::string rest = target.substr(q + 11);
    for (size_t i = 0; i <= rest.size();) {
      size_t amp = rest.find('&', i);
      if (amp == std::string::npos) amp = rest.size();
      std::string kv = rest.substr(i, amp - i), out;
      for (size_t k = 0; k < kv.size(); ++k) {
        if (kv[k] == '%' && k + 2 < kv.size()) {
          out.push_back(static_cast<char>(std::stoi(kv.substr(k + 1, 2), nullptr, 16)));
          k += 2;
        } else {
          out.push_back(kv[k]);
        }
      }
      size_t eq = out.find('=');
      if (eq != std::string::npos) query[out.substr(0, eq)] = out.substr(eq + 1);
      i = amp + 1;
    }
    std::lock_guard lock(mu_);
    FakeJob& job = jobs_[id];
    ++job.artifact_uploads;
    if (fail_artifacts_ > 0) {
      --fail_artifacts_;
      return {503, R"({"error":"try again"})"};
    }
    if (query.count("link")) {
      job.artifacts[query["path"]] = FakeArtifact{"", query["step"], "", query["link"]};
      job.stored_artifacts.emplace_back(query["path"], job.artifacts[query["path"]]);
      cv_.notify_all();
      return {200, R"({"stored":true})"};
    }
    if (sha256_hex(body) != query["sha256"]) {
      ++job.sha256_mismatches;
      cv_.notify_all();
      return {400, R"({"error":"sha256 mismatch"})"};
    }
    job.artifacts[query["path"]] = FakeArtifact{query["sha256"], query["step"], body, {}};
    job.stored_artifacts.emplace_back(query["path"], job.artifacts[query["path"]]);
    cv_.notify_all();
    return {200, R"({"stored":true})"};
  }
  boost::system::error_code pec;
  json::value in = json::parse(body, pec);
  if (pec) return {400, R"({"error":"bad json"})"};

  if (target == protocol::kAgentSandboxSyncPath) {
    auto sync = protocol::sandbox_sync_from_json(in);
    if (!sync.ok()) return {400, json::serialize(json::value{{"error", sync.error().message}})};
    std::lock_guard lock(mu_);
    if (fail_sandbox_syncs_ > 0) {
      --fail_sandbox_syncs_;
      return {503, R"({"error":"try again"})"};
    }
    sandbox_syncs_.push_back({agent, std::move(*sync)});
    cv_.notify_all();
    return {200, json::serialize(protocol::to_json(protocol::SandboxSyncAnswer{deleted_sandboxes_}))};
  }
  if (target == protocol::kAgentClaimPath) {
    auto req = protocol::from_json<protocol::ClaimRequest>(in);
    if (!req.ok()) return {400, "{}"};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(req->wait_ms);
    std::unique_lock lock(mu_);
    // A real server drops a long poll whose client went away; so does this one, also when a
    // job arrives in the same moment (it must not go to a claim nobody reads).
    auto gone = [fd] {
      pollfd p{fd, POLLRDHUP, 0};
      return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
    };
    while (queue_.empty()) {
      if (stopping_ || std::chrono::steady_clock::now() >= deadline) return {204, ""};
      if (gone()) return {204, ""};
      cv_.wait_for(lock, std::chrono::milliseconds(20));
    }
    if (gone()) return {204, ""};
    protocol::JobSpec job = queue_.front();
    queue_.pop_front();
    ++claimed_;
    job.lease_token = "lease-" + std::to_string(job.id) + "-" + std::to_string(claimed_);
    jobs_[job.id].agent = agent;
    jobs_[job.id].lease = job.lease_token;
    cv_.notify_all();
    std::vector<std::pair<std::string, std::string>> headers = {
        {protocol::kJobHeader, std::to_string(job.id)}, {protocol::kLeaseHeader, job.lease_token}};
    if (auto raw = unreadable_.find(job.id); raw != unreadable_.end()) {
      return {200, std::move(raw->second), headers};
    }
    return {200, json::serialize(protocol::to_json(protocol::ClaimResponse{job})), headers};
  }

  const std::string_view prefix = protocol::kAgentJobsPrefix;
  if (target.rfind(prefix, 0) != 0) return {404, "{}"};
  std::string rest = target.substr(prefix.size());
  size_t slash = rest.find('/');
  int64_t id = std::stoll(rest.substr(0, slash));
  std::string what = rest.substr(slash + 1);
  if (wrong_lease(id)) return {409, R"({"error":"lease lost"})"};
  std::lock_guard lock(mu_);
  FakeJob& job = jobs_[id];
  Answer answer{200, "{}"};
  if (what == "heartbeat") {
    ++job.heartbeats;
    protocol::HeartbeatResponse r{job.cancel, job.lost};
    answer = {200, json::serialize(protocol::to_json(r))};
  } else if (what == "logs") {
    auto up = protocol::from_json<protocol::LogUpload>(in);
    if (!up.ok()) return {400, "{}"};
    for (const auto& c : up->chunks) {
      if (!refuse_logs_marker_.empty() && c.data.find(refuse_logs_marker_) != std::string::npos) {
        ++refused_logs_;
        return {400, R"({"error":"this chunk is not acceptable"})"};
      }
    }
    int stored = 0;
    for (const auto& c : up->chunks) {
      auto [it, fresh] = job.logs.emplace(std::make_tuple(c.step, c.attempt, c.seq), c.data);
      fresh ? ++stored : ++job.duplicate_chunks;
    }
    answer = {200, "{\"stored\":" + std::to_string(stored) + "}"};
    if (fail_logs_ > 0) {
      --fail_logs_;
      answer = {500, R"({"error":"lost the answer"})"};
    }
  } else if (what == "steps") {
    auto up = protocol::from_json<protocol::StepUpdate>(in);
    if (!up.ok()) return {400, "{}"};
    job.steps.push_back(*up);
  } else if (what == "secrets") {
    // Keeps none: a job's secrets come from its env here.
    answer = {200, json::serialize(protocol::to_json(protocol::SecretsResponse{}))};
  } else if (what == "complete") {
    auto up = protocol::from_json<protocol::CompleteRequest>(in);
    if (!up.ok()) return {400, "{}"};
    job.complete = *up;
  } else {
    return {404, "{}"};
  }
  cv_.notify_all();
  return answer;
}

}  // namespace boxcar::agent::testing
