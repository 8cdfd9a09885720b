#include "server/log_followers.h"

namespace boxcar::server {

LogFollowers::LogFollowers(int max_per_job, int max_per_client)
    : max_per_job_(max_per_job), max_per_client_(max_per_client) {}

LogFollowers::Slot::~Slot() { owner_.release(job_, client_); }

std::unique_ptr<LogFollowers::Slot> LogFollowers::admit(int64_t job, const std::string& client,
                                                        Refusal& refusal) {
  std::lock_guard lock(mu_);
  int& of_job = per_job_[job];
  int& of_client = per_client_[client];
  if (max_per_job_ > 0 && of_job >= max_per_job_) {
    refusal = {"job", "job " + std::to_string(job) + " already has " + std::to_string(of_job) +
                          " live log followers on this server, its limit (boxcar serve "
                          "--max-followers-per-job): try again later, or read the log without "
                          "follow=1"};
  } else if (max_per_client_ > 0 && of_client >= max_per_client_) {
    refusal = {"client", "this client (" + client + ") already follows " +
                             std::to_string(of_client) +
                             " job logs on this server, its limit (boxcar serve "
                             "--max-followers-per-client): close one first"};
  } else {
    ++of_job;
    ++of_client;
    return std::unique_ptr<Slot>(new Slot(*this, job, client));
  }
  if (of_job == 0) per_job_.erase(job);
  if (of_client == 0) per_client_.erase(client);
  return nullptr;
}

void LogFollowers::release(int64_t job, const std::string& client) {
  std::lock_guard lock(mu_);
  if (auto it = per_job_.find(job); it != per_job_.end() && --it->second <= 0) per_job_.erase(it);
  if (auto it = per_client_.find(client); it != per_client_.end() && --it->second <= 0) {
    per_client_.erase(it);
  }
}

size_t LogFollowers::total() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [job, count] : per_job_) n += static_cast<size_t>(count);
  return n;
}

int LogFollowers::followers_of_job(int64_t job) const {
  std::lock_guard lock(mu_);
  auto it = per_job_.find(job);
  return it == per_job_.end() ? 0 : it->second;
}

int LogFollowers::followers_of_client(const std::string& client) const {
  std::lock_guard lock(mu_);
  auto it = per_client_.find(client);
  return it == per_client_.end() ? 0 : it->second;
}

}  // namespace boxcar::server
