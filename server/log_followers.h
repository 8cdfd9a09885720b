// LogFollowers: the live log followers (GET /api/v1/jobs/{id}/logs?follow=1) this server holds,
// counted per job and per client address, so that the watchers of one job, or one client, cannot
// take every connection and thread of the server. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace boxcar::server {

class LogFollowers {
 public:
  // Caps of 0 mean no cap.
  LogFollowers(int max_per_job, int max_per_client);

  // A follower's place, held while it streams; its destructor gives the place back. It must not
  // outlive the LogFollowers.
  class Slot {
   public:
    ~Slot();
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    friend class LogFollowers;
    Slot(LogFollowers& owner, int64_t job, std::string client)
        : owner_(owner), job_(job), client_(std::move(client)) {}
    LogFollowers& owner_;
    int64_t job_;
    std::string client_;
  };

  struct Refusal {
    std::string cap;      // "job" or "client": which cap was reached
    std::string message;  // for the 429: what was reached, the flag, what to do
  };

  // A place for one more follower of `job` from `client`, or nullptr with `refusal` filled in.
  std::unique_ptr<Slot> admit(int64_t job, const std::string& client, Refusal& refusal);

  int followers_of_job(int64_t job) const;
  size_t total() const;  // every job's together
  int followers_of_client(const std::string& client) const;

 private:
  void release(int64_t job, const std::string& client);

  const int max_per_job_, max_per_client_;
  mutable std::mutex mu_;
  std::map<int64_t, int> per_job_;
  std::map<std::string, int> per_client_;
};

}  // namespace boxcar::server
