#include "server/forge_status_sender.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/random_token.h"
#include "base/url.h"
#include "http/http_client.h"
#include "server/api.h"
#include "server/forge_status_request.h"

namespace boxcar::server {

namespace net = boost::asio;

namespace {
constexpr auto kRecheck = std::chrono::seconds(1);  // retries due, rows other servers queued
constexpr size_t kMaxClients = 64;                  // API roots with a kept-alive connection
// Wakes come with every log upload too: passes (each a store transaction) are at least this
// far apart, so a step flooding its log does not double the store's write traffic.
constexpr auto kMinGap = std::chrono::milliseconds(100);
}  // namespace

struct ForgeStatusSender::Impl : std::enable_shared_from_this<Impl> {
  Impl(Store& s, const ServerConfig& c, Metrics& m, std::vector<Notifier*> w)
      : store(s), config(c), metrics(m), wakes(std::move(w)), timer(io),
        jitter_source(std::random_device{}()) {}

  Store& store;
  const ServerConfig& config;
  Metrics& metrics;
  std::vector<Notifier*> wakes;
  std::vector<std::pair<Notifier*, uint64_t>> waiting;  // notifier waits of the current pass
  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  net::steady_timer timer;
  std::thread thread;
  std::string claimer;
  std::map<std::string, std::unique_ptr<HttpClient>> clients;  // by API root
  int in_flight = 0;
  std::atomic<bool> stopping = false;  // read by the notifiers' threads too
  std::mt19937_64 jitter_source;
  std::chrono::steady_clock::time_point last_pass{};

  // Long enough that a request (and its one re-send on a fresh connection) ends before another
  // server may take the row; short enough that a crashed server's rows go on soon.
  int64_t hold_ms() const { return 2 * config.status_timeout_ms + 5'000; }

  // Runs on io: claims what is due (as many as may be in flight), sends it, and waits again.
  // Runs on io, for a wake: a pass now, or once kMinGap has passed since the last one.
  void pass_soon() {
    if (stopping) return;
    auto since = std::chrono::steady_clock::now() - last_pass;
    if (since >= kMinGap) return pass();
    timer.expires_after(kMinGap - since);  // replaces the recheck's wait: its handler sees ec
    std::weak_ptr<Impl> weak = weak_from_this();
    timer.async_wait([weak](boost::system::error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->pass();
    });
  }

  void pass() {
    if (stopping) return;
    last_pass = std::chrono::steady_clock::now();
    for (auto [notifier, id] : waiting) notifier->cancel(id);
    waiting.clear();
    std::vector<uint64_t> seen;
    for (Notifier* n : wakes) seen.push_back(n->generation());
    int room = std::max(1, config.status_max_in_flight) - in_flight;
    if (room > 0) {
      auto rows = store.claim_forge_statuses(claimer, room, hold_ms(), now_ms());
      if (rows) {
        for (const auto& row : *rows) deliver(row);
      } else {
        std::fprintf(stderr, "boxcar serve: forge statuses: %s\n", rows.error().message.c_str());
      }
    }
    if (auto n = store.undelivered_forge_statuses()) metrics.set_forge_statuses_undelivered(*n);
    std::weak_ptr<Impl> weak = weak_from_this();
    for (size_t i = 0; i < wakes.size(); ++i) {
      uint64_t id = wakes[i]->wait(seen[i], [weak] {
        if (auto self = weak.lock(); self && !self->stopping) {
          net::post(self->io, [self] { self->pass_soon(); });
        }
      });
      waiting.emplace_back(wakes[i], id);
    }
    timer.expires_after(kRecheck);
    timer.async_wait([weak](boost::system::error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->pass();
    });
  }

  void finish(const ForgeStatusRecord& row, const std::string& forge, ForgeStatusOutcome outcome) {
    UnixMillis now = now_ms();
    if (outcome.kind == ForgeStatusOutcome::retry) {
      int tries = row.attempts + (outcome.attempted ? 1 : 0);
      if (tries >= kMaxStatusAttempts || now - row.created_at >= kStatusGiveUpMs) {
        outcome.kind = ForgeStatusOutcome::failed;
        outcome.error = "gave up after " + std::to_string(tries) + " tries: " + outcome.error;
      } else {
        double jitter = std::uniform_real_distribution<double>(0.5, 1.0)(jitter_source);
        outcome.next_attempt_at = now + status_backoff(tries, jitter).count();
      }
    }
    const char* result = outcome.kind == ForgeStatusOutcome::delivered ? "delivered"
                         : outcome.kind == ForgeStatusOutcome::retry   ? "retry"
                                                                       : "failed";
    metrics.count_forge_status(forge.empty() ? "none" : forge, result);
    if (auto done = store.finish_forge_status(row.id, claimer, outcome, now); !done) {
      std::fprintf(stderr, "boxcar serve: forge statuses: %s\n", done.error().message.c_str());
    }
  }

  HttpClient* client_for(const std::string& api_root) {
    auto it = clients.find(api_root);
    if (it != clients.end()) return it->second.get();
    if (clients.size() >= kMaxClients) {
      for (auto c = clients.begin(); c != clients.end();) {
        c = c->second->in_flight() == 0 ? clients.erase(c) : std::next(c);
      }
    }
    auto url = parse_server_url(api_root);
    if (!url) return nullptr;
    HttpClientOptions options;
    options.max_body = 64 << 10;  // a status's answer is small; an error's text is all we read
    auto client = std::make_unique<HttpClient>(io, *url, "", nullptr, options);
    return clients.emplace(api_root, std::move(client)).first->second.get();
  }

  void deliver(const ForgeStatusRecord& row) {
    auto job = store.job(row.job_id);
    if (!job || !*job) {
      // Gone (retention) or the store failed: the hold ends and the row is tried again.
      return;
    }
    const std::string forge = (*job)->forge.forge;
    auto req = status_request(**job, row, config);
    HttpClient* client = req ? client_for(req->api_root) : nullptr;
    if (!req || !client) {
      std::string why = req ? "the forge's API root " + req->api_root + " is not a URL"
                            : req.error().message;
      return finish(row, forge, ForgeStatusOutcome{ForgeStatusOutcome::failed, false, 0, why, 0});
    }
    std::string secret;
    for (const auto& [name, value] : req->headers) {
      if (name == "Authorization" || name == "PRIVATE-TOKEN") secret = value.substr(value.find(' ') + 1);
    }
    ++in_flight;
    std::weak_ptr<Impl> weak = weak_from_this();
    client->send("POST", req->path, req->body, "application/json",
                 Millis(config.status_timeout_ms),
                 [weak, row, forge, secret](const boost::system::error_code& ec, HttpReply reply) {
                   auto self = weak.lock();
                   if (!self || self->stopping) return;
                   --self->in_flight;
                   // An answer whose body was cut off still said what it had to in its status.
                   std::string network = ec && reply.status == 0 ? ec.message() : "";
                   std::string message = forge_error_message(reply.body, secret);
                   StatusVerdict verdict = classify_status_reply(
                       forge, network, reply.status, reply.header("X-RateLimit-Remaining"), message);
                   self->finish(row, forge,
                                ForgeStatusOutcome{verdict.kind, true, static_cast<int>(reply.status),
                                                   verdict.why, 0});
                   self->pass();
                 },
                 req->headers);
  }
};

ForgeStatusSender::ForgeStatusSender(Store& store, const ServerConfig& config, Metrics& metrics,
                                     std::vector<Notifier*> wakes)
    : impl_(std::make_shared<Impl>(store, config, metrics, std::move(wakes))) {}

ForgeStatusSender::~ForgeStatusSender() { stop(); }

Status ForgeStatusSender::start() {
  Impl& s = *impl_;
  if (s.thread.joinable()) return Error{"the status sender is already running"};
  auto claimer = random_token(16);
  if (!claimer) return claimer.error();
  s.claimer = *claimer;
  s.stopping = false;
  s.work.emplace(s.io.get_executor());
  net::post(s.io, [self = impl_] { self->pass(); });
  s.thread = std::thread([&s] { s.io.run(); });
  return {};
}

void ForgeStatusSender::stop() {
  Impl& s = *impl_;
  if (!s.thread.joinable()) return;
  net::post(s.io, [&s] {
    s.stopping = true;
    s.timer.cancel();
    for (auto [notifier, id] : s.waiting) notifier->cancel(id);
    s.waiting.clear();
    s.clients.clear();  // aborts the requests in flight; their handlers are not called
  });
  s.work.reset();
  s.thread.join();
  s.io.restart();
}

}  // namespace boxcar::server
