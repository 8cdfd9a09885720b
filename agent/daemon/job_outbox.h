// JobOutbox: the reports of one running job (log chunks, step updates, the final complete)
// sent to the server one at a time, in the order they were posted, each retried with backoff
// until the server takes it. A retried log upload carries the same sequence numbers, so the
// server stores it once. A 409 (lease lost) or 401/403 stops the outbox and is reported.
// A log upload the server refuses (400, 413) is never dropped whole: its chunks go again one at
// a time, and a chunk refused on its own is replaced, under its sequence number, by a line in
// that step's log saying how much was lost and why.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/value.hpp>

#include "http/http_client.h"
#include "agent/daemon/remote_errors.h"

namespace boxcar::agent {

struct JobOutboxHandlers {
  // lease_lost or auth_refused: nothing more is sent.
  std::function<void(const RemoteOutcome&)> on_fatal;
  // A one-line message for the agent's log (a dropped or retried request).
  std::function<void(const std::string&)> log;
};

class JobOutbox {
 public:
  // Every report carries `lease`, the lease token of the claim that gave the agent the job.
  JobOutbox(boost::asio::io_context& io, HttpClient& client, int64_t job_id, std::string lease,
            JobOutboxHandlers handlers, Millis request_timeout = Millis(30'000));
  ~JobOutbox();

  // `what` is the last path segment: "logs", "steps" or "complete".
  void post(const std::string& what, boost::json::value body);

  // Queues an upload of bytes [0, `bytes`) of the open file `file` to `what` (a last path
  // segment with its query, e.g. "artifacts?path=..."), in order with the other reports and
  // retried the same way. The outbox holds the descriptor until the upload is settled, so what
  // is sent is that inode's content whatever happens to its name meanwhile. If the file cannot
  // be read (an error, or it ends early) the upload is dropped and logged, like a rejected one.
  void post_file(const std::string& what, SharedFd file, uint64_t bytes);

  // `done` runs once everything posted so far was accepted (or dropped), at once if nothing
  // is pending. Not called after stop().
  void when_drained(std::function<void()> done);

  // Drops what is pending; sends nothing more.
  void stop();
  bool stopped() const { return stopped_; }
  size_t pending() const { return queue_.size(); }

 private:
  struct Item {
    std::string what;
    boost::json::value body;
    SharedFd file;  // set: the body is bytes [0, bytes) of this file
    uint64_t bytes = 0;
    int refusals = 0;  // logs: 1 = one chunk of a refused batch, 2 = a refused chunk's note
  };
  // What goes instead of a refused log upload (empty: nothing, it is dropped).
  std::vector<Item> instead_of_refused_logs(const Item& refused, const std::string& why) const;
  void send_next();
  void settle();

  boost::asio::io_context& io_;
  HttpClient& client_;
  int64_t job_id_;
  std::string lease_;
  JobOutboxHandlers handlers_;
  Millis timeout_;
  std::deque<Item> queue_;
  bool in_flight_ = false;
  uint64_t request_id_ = 0;
  bool stopped_ = false;
  Backoff backoff_;
  boost::asio::steady_timer retry_timer_;
  std::function<void()> drained_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace boxcar::agent
