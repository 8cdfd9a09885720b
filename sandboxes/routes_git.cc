// The git route of the sandbox API (SANDBOXES.md §2.6): POST /git/checkout clones a repository
// through the agent's libgit2 mirror cache (git/checkout.h, shared with jobs) into a staging
// directory beside the sandbox's workspace (outside its view), then places the tree at `dir`
// below /workspace without following anything the sandbox controls (workspace_place.h). The
// checkout runs on a thread of its own, one per sandbox at a time and git_max_threads per agent
// (counted until the thread ends), with a deadline (timeout_ms) and cancelled when the sandbox is
// removed. The remote is always asked (always_fetch): the mirror is shared with other tenants.
// The URL must reach a public address unless the agent allows private ones (git/url_guard.h),
// and then no redirect to another host is followed; local paths and file:// only with
// --allow-local-repos; the token goes only to https:// of the URL's own host.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "base/tree_walk.h"
#include "base/url.h"
#include "git/checkout.h"
#include "git/url_guard.h"
#include "protocol/json_reader.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/sandbox_host.h"
#include "sandboxes/sandbox_path.h"
#include "sandboxes/workspace_place.h"

namespace boxcar::sandboxes {

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using server::HttpRequest;
using server::HttpResponse;
using Reply = std::shared_ptr<server::Responder>;

constexpr int64_t kDefaultTimeoutMs = 600000;
constexpr int64_t kMaxTimeoutMs = 3600000;
constexpr size_t kMaxUrl = 4096, kMaxRef = 1024, kMaxToken = 4096;

struct CheckoutBody {
  std::string url, ref, commit, dir, token;
  bool submodules = true;
  bool replace = false;
  int64_t timeout_ms = kDefaultTimeoutMs;
  int64_t depth = 0;  // accepted; libgit2 1.5 cannot fetch shallow (the answer says shallow:false)
};

// The repository's name in its URL: ".../org/app.git/" -> "app"; "" when there is none that can
// be a directory name.
std::string repo_name(std::string_view url) {
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  size_t cut = url.find_last_of("/:");
  std::string_view name = cut == std::string_view::npos ? url : url.substr(cut + 1);
  if (name.size() > 4 && name.substr(name.size() - 4) == ".git") name.remove_suffix(4);
  if (name.empty() || name == "." || name == ".." || name.size() > 255) return "";
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '\\' || c == '?' || c == '#' || c == '%') return "";
  }
  return std::string(name);
}

bool has_control(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

HttpResponse bad(std::string message, std::string_view field, std::string_view code = "bad_request") {
  return HttpResponse::error_code(400, code, message, field);
}

// What a checkout or placement error answers (SANDBOXES.md §2.0).
HttpResponse checkout_error(const Error& e) {
  switch (e.code) {
    case ErrorCode::invalid_input:
      if (e.subject == "dir") return bad(e.message, "dir", "bad_path");
      return bad(e.message, e.subject.empty() ? "url" : e.subject);
    case ErrorCode::conflict: return HttpResponse::error_code(409, "exists", e.message, "dir");
    case ErrorCode::unavailable: return HttpResponse::error_code(502, "fetch_failed", e.message + " (check the URL, the token, and that the agent can reach the host)", "url");
    default: return HttpResponse::error_code(500, "internal", e.message);
  }
}

// One checkout from the route to its answer; everything but `run` lives on the io_context.
struct Flight {
  std::shared_ptr<GitRun> run;
  Reply reply;
  bool answered = false;
  bool timed_out = false;
  std::unique_ptr<boost::asio::steady_timer> deadline;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  void answer(HttpResponse response) {
    if (answered) return;
    answered = true;
    reply->reply(std::move(response));
  }
};

}  // namespace

void add_git_routes(server::Router& router, SandboxHost& host) {
  using server::http::verb;

  router.add(verb::post, "/api/v1/sandboxes/{id}/git/checkout", [&host](HttpRequest& req, Reply res) {
    HttpResponse error;
    ApiSandbox* sb = host.resolve(req, error);
    if (!sb) return res->reply(std::move(error));
    auto v = protocol::parse_json(req.body());
    if (!v || !v->is_object()) {
      return res->reply(bad("the body must be a JSON object like {\"url\": \"https://github.com/org/repo.git\"}", ""));
    }
    CheckoutBody b;
    protocol::JsonReader r(*v);
    r.known({"url", "ref", "commit", "dir", "submodules", "token", "timeout_ms", "replace", "depth"})
        .required("url", b.url).optional("ref", b.ref).optional("commit", b.commit).optional("dir", b.dir)
        .optional("submodules", b.submodules).optional("token", b.token).optional("timeout_ms", b.timeout_ms)
        .optional("replace", b.replace).optional("depth", b.depth);
    if (!r.ok()) return res->reply(bad(r.error().message, r.error_field()));
    if (b.url.empty() || b.url.size() > kMaxUrl || has_control(b.url)) {
      return res->reply(bad("url: expected a repository URL of 1 to 4096 bytes without control characters", "url"));
    }
    if (b.ref.size() > kMaxRef || has_control(b.ref)) return res->reply(bad("ref: at most 1024 bytes, no control characters", "ref"));
    if (b.commit.size() > 64) return res->reply(bad("commit: a sha of at most 40 hexadecimal digits", "commit"));
    if (b.token.size() > kMaxToken || has_control(b.token)) return res->reply(bad("token: at most 4096 bytes, no control characters", "token"));
    if (b.timeout_ms < 1 || b.timeout_ms > kMaxTimeoutMs) {
      return res->reply(bad("timeout_ms " + std::to_string(b.timeout_ms) + ": expected 1 to 3600000 (an hour)", "timeout_ms"));
    }
    if (b.depth < 0) return res->reply(bad("depth: expected 0 or more", "depth"));
    if (b.dir.empty()) {
      std::string name = repo_name(b.url);
      if (name.empty()) return res->reply(bad("cannot name a directory after " + redact_url(b.url) + ": give dir", "dir"));
      b.dir = std::string(kDefaultCwd) + "/" + name;
    }
    auto dir = sandbox_path(b.dir);
    if (!dir) return res->reply(bad("dir: " + dir.error().message, "dir", "bad_path"));
    const std::string prefix = std::string(kDefaultCwd) + "/";
    if (dir->size() <= prefix.size() || dir->compare(0, prefix.size(), prefix) != 0) {
      return res->reply(bad("dir " + *dir + " is not below /workspace: a checkout goes to /workspace/<name> (or a directory under it)", "dir", "bad_path"));
    }
    if (sb->git().busy()) {
      return res->reply(HttpResponse::error_code(429, "limit_reached", "a git checkout into this sandbox is running already: one at a time; try again when it ends"));
    }
    // Taken here on the io thread, given back by the checkout thread as its last act.
    std::shared_ptr<std::atomic<size_t>> threads = host.git_threads();
    const size_t max_threads = host.options().git_max_threads;
    if (threads->fetch_add(1) >= max_threads) {
      threads->fetch_sub(1);
      return res->reply(HttpResponse::error_code(429, "limit_reached", "the agent runs " + std::to_string(max_threads) +
          " git checkouts already (agent-wide, counting transfers still hanging after a timeout or a deleted sandbox); try again when one ends"));
    }

    git::CheckoutRequest cr;
    cr.url = b.url;
    cr.ref = b.ref;
    cr.commit = b.commit;
    cr.data_dir = host.options().data_dir;  // <data>/mirrors: the mirrors jobs use too
    const fs::path staging = sb->dir() / "git-staging";
    cr.workspace = staging / "tree";
    cr.token = b.token;
    if (auto token_host = credential_host(b.url)) cr.token_hosts = {*token_host};
    cr.submodules = b.submodules;
    cr.allow_local = host.options().git_allow_local;
    if (!host.options().git_allow_private) cr.check_url = [](const std::string& url) { return git::check_public_url(url); };

    auto flight = std::make_shared<Flight>();
    flight->run = sb->git().begin();
    flight->reply = res;
    flight->deadline = std::make_unique<boost::asio::steady_timer>(host.io(), std::chrono::milliseconds(b.timeout_ms));
    flight->deadline->async_wait([flight, ms = b.timeout_ms](const boost::system::error_code& ec) {
      if (ec || flight->answered) return;
      flight->timed_out = true;
      flight->run->cancelled = true;
      // Answered now: a transfer stuck in a read stops only when the far side gives up, and
      // the slot stays taken until then.
      flight->answer(HttpResponse::error_code(504, "timeout", "the checkout took longer than timeout_ms (" + std::to_string(ms) +
                                                                  "); give a larger timeout_ms", "timeout_ms"));
    });
    cr.cancelled = &flight->run->cancelled;
    // The sandbox is the one to prove access: a commit already in the shared mirror is not
    // enough (another tenant or a job may have fetched a private repository).
    cr.always_fetch = true;

    const std::string id = sb->id(), rel = dir->substr(prefix.size());
    const fs::path workspace = sb->workspace_dir(), sandbox_dir = sb->dir();
    boost::asio::io_context& io = host.io();
    std::thread([&host, &io, flight, threads, cr = std::move(cr), id, rel, workspace, sandbox_dir, staging, replace = b.replace,
                 shown_dir = *dir]() mutable {
      // Counted until this thread returns, whichever way (the cap bounds threads, not slots).
      struct Release {
        std::shared_ptr<std::atomic<size_t>> n;
        ~Release() { n->fetch_sub(1); }
      } release{threads};
      std::atomic<bool> no_stop{false};
      // A leftover of a checkout cut short by an agent restart; here, not on the io thread,
      // since it may be a sandbox-sized tree.
      remove_tree(staging, no_stop);
      auto result = git::checkout(cr);
      Status placed;
      {
        std::lock_guard lock(flight->run->mu);
        if (flight->run->abandoned) {
          // The sandbox is gone, and the io_context may be too: clean up here. A deleted
          // sandbox's directory goes whole (libgit2 may have written into it after the removal).
          remove_tree(flight->run->removed ? sandbox_dir : staging, no_stop);
          return;
        }
        if (result.ok() && !flight->run->cancelled) placed = place_in_workspace(workspace, rel, cr.workspace, replace);
      }
      remove_tree(staging, no_stop);
      boost::asio::post(io, [&host, flight, result = std::move(result), placed, id, shown_dir, url = redact_url(cr.url)] {
        if (flight->run->abandoned) {
          return flight->answer(HttpResponse::error_code(404, "sandbox_not_found", "the sandbox was removed during the checkout"));
        }
        if (ApiSandbox* owner = host.find(id)) owner->git().end(flight->run);
        flight->deadline->cancel();
        if (flight->timed_out) return;
        if (!result.ok()) return flight->answer(checkout_error(result.error()));
        if (!placed.ok()) return flight->answer(checkout_error(placed.error()));
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - flight->started).count();
        flight->answer(HttpResponse::json(200, json::object{{"url", url},
                                                            {"dir", shown_dir},
                                                            {"ref", result->ref},
                                                            {"commit", result->commit},
                                                            {"fetched", result->fetched},
                                                            {"submodules", result->submodules},
                                                            {"duration_ms", ms},
                                                            {"shallow", false}}));
      });
    }).detach();
  });
}

}  // namespace boxcar::sandboxes
