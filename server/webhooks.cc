#include "server/webhooks.h"

#include <chrono>

#include <boost/json.hpp>

#include <boost/url/parse.hpp>

#include "base/url.h"
#include "server/forge_status_request.h"

#include "base/random_token.h"
#include "base/sha256.h"
#include "protocol/json_reader.h"
#include "server/api.h"
#include "server/supersede.h"
#include "server/webhook_signature.h"

namespace boxcar::server {

namespace json = boost::json;
using protocol::JsonReader;

namespace {

const ForgeHeaders kGithub{"github", "X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256"};
const ForgeHeaders kGitea{"gitea", "X-Gitea-Event", "X-Gitea-Delivery", "X-Gitea-Signature"};
const ForgeHeaders kGitlab{"gitlab", "X-Gitlab-Event", "X-Gitlab-Event-UUID", "X-Gitlab-Token"};

bool all_zero(const std::string& sha) {
  return !sha.empty() && sha.find_first_not_of('0') == std::string::npos;
}

Result<WebhookOutcome> ignored(std::string why) {
  WebhookOutcome out;
  out.why = std::move(why);
  return out;
}

// A nested object, or an Error naming it.
Result<const json::value*> object_at(JsonReader& in, std::string_view key) {
  const json::value* v = in.field(key, true);
  if (!in.ok()) return in.error();
  if (!v->is_object()) {
    return Error{"\"" + in.name(key) + "\": expected an object, got " + protocol::json_kind(*v)};
  }
  return v;
}

std::string string_at(const json::value* object, std::string_view key) {
  if (!object || !object->is_object()) return "";
  const json::value* v = object->as_object().if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : "";
}

// "https://git.example.com" of "https://git.example.com/owner/repo"; "" unless http(s).
std::string web_origin(const std::string& web_url) {
  auto url = boost::urls::parse_absolute_uri(web_url);
  if (!url || (url->scheme() != "https" && url->scheme() != "http") || !url->has_authority() ||
      url->encoded_host().empty() || url->has_userinfo()) {
    return "";
  }
  return std::string(url->scheme()) + "://" + std::string(url->encoded_authority());
}

// "owner/name" when `full_name` is one (each part [A-Za-z0-9._-], neither "." nor "..": it
// becomes a path in the forge's API) and it is the path of `clone_url` (so a status goes to the
// repository the job checks out, not one the payload merely names); else "".
std::string checked_full_name(const std::string& full_name, const std::string& clone_url) {
  size_t slash = full_name.find('/');
  if (slash == std::string::npos || full_name.find('/', slash + 1) != std::string::npos) return "";
  for (std::string_view part : {std::string_view(full_name).substr(0, slash),
                                std::string_view(full_name).substr(slash + 1)}) {
    if (part.empty() || part == "." || part == ".." ||
        part.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
            std::string_view::npos) {
      return "";
    }
  }
  // A URL's path, or a path on this machine (tests, mirrors); self-hosted forges may sit under
  // a path prefix ("https://host/gitea/owner/name.git").
  auto url = boost::urls::parse_absolute_uri(clone_url);
  if (!url && clone_url.rfind('/', 0) != 0) return "";
  std::string path = url ? std::string(url->path()) : clone_url;
  if (path.size() > 4 && path.ends_with(".git")) path.resize(path.size() - 4);
  while (!path.empty() && path.back() == '/') path.pop_back();
  auto lower = [](std::string v) {
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v;
  };
  return lower(path).ends_with(lower("/" + full_name)) ? full_name : "";
}

// Where a GitHub or Gitea repository object says its statuses go and its web page is. Optional
// fields: a payload without them queues its job all the same, only without statuses.
void hub_link(NewJob& job, const json::value* repo) {
  job.forge.repo = checked_full_name(string_at(repo, "full_name"), string_at(repo, "clone_url"));
  // Gitea's API is at the web page's origin: only a page where the repository is cloned from.
  // (A repository cloned from a path on this machine has no origin to compare.)
  std::string web_url = string_at(repo, "html_url");
  std::string clone_origin = web_origin(string_at(repo, "clone_url"));
  if (clone_origin.empty() || web_origin(web_url) == clone_origin) job.forge.web_url = web_url;
  if (job.default_branch.empty()) job.default_branch = string_at(repo, "default_branch");
}

// A GitLab project object (the push's project, or a merge request's target project).
void gitlab_link(NewJob& job, const json::value* project) {
  if (project && project->is_object()) {
    if (const json::value* id = project->as_object().if_contains("id"); id && id->is_int64()) {
      job.forge.repo = std::to_string(id->as_int64());
    }
  }
  job.forge.web_url = string_at(project, "web_url");
  job.default_branch = string_at(project, "default_branch");
}

// A pull request's job checks out the head (ref, commit, repository: maybe a fork), but its
// branch, for [on] pull_request.branches and when.branch, is the base the PR would merge into:
// the agent reads it from BOXCAR_PR_BASE. A fork can name its branch anything, "main" included.
void pull_request_env(NewJob& job, int64_t number, const std::string& base) {
  job.event = "pull_request";
  if (number > 0) job.env["BOXCAR_PR_NUMBER"] = std::to_string(number);
  job.env["BOXCAR_PR_BASE"] = base.rfind("refs/heads/", 0) == 0 ? base.substr(11) : base;
  job.env["BOXCAR_PR_HEAD"] = job.ref.rfind("refs/heads/", 0) == 0 ? job.ref.substr(11) : job.ref;
}

// GitHub and Gitea push payloads have the same shape.
Result<WebhookOutcome> hub_push(const json::value& payload) {
  WebhookOutcome out;
  JsonReader in(payload);
  std::string after;
  bool deleted = false;
  in.required("ref", out.job.ref).optional("after", after).optional("deleted", deleted);
  auto repo = object_at(in, "repository");
  if (!repo) return repo.error();
  JsonReader rin(**repo, "repository");
  rin.required("clone_url", out.job.repo);
  if (!in.ok()) return in.error();
  if (!rin.ok()) return rin.error();
  if (deleted || all_zero(after)) return ignored("branch or tag deleted");
  hub_link(out.job, *repo);
  out.job.commit = after;
  out.job.event = out.job.ref.rfind("refs/tags/", 0) == 0 ? "tag" : "push";
  out.action = WebhookOutcome::queue;
  return out;
}

Result<WebhookOutcome> hub_pull_request(const json::value& payload) {
  JsonReader in(payload);
  std::string action;
  in.required("action", action);
  auto pr = object_at(in, "pull_request");
  if (!pr) return pr.error();
  if (action != "opened" && action != "synchronize" && action != "synchronized" &&
      action != "reopened") {
    return ignored("pull_request action " + action);
  }
  JsonReader prin(**pr, "pull_request");
  auto head = object_at(prin, "head");
  if (!head) return head.error();
  auto base = object_at(prin, "base");
  if (!base) return base.error();
  WebhookOutcome out;
  int64_t number = 0;
  in.optional("number", number);
  if (!in.ok()) return in.error();
  JsonReader hin(**head, "pull_request.head");
  hin.required("sha", out.job.commit).required("ref", out.job.ref);
  auto head_repo = object_at(hin, "repo");
  if (!head_repo) return head_repo.error();
  JsonReader rin(**head_repo, "pull_request.head.repo");
  rin.required("clone_url", out.job.repo);
  if (!rin.ok()) return rin.error();
  std::string base_ref;
  JsonReader bin(**base, "pull_request.base");
  bin.required("ref", base_ref);
  if (!bin.ok()) return bin.error();
  pull_request_env(out.job, number, base_ref);
  // A fork's job gets no secrets: a fork unless the base's repository is the head's.
  std::string base_repo;
  if (const json::value* r = (*base)->as_object().if_contains("repo"); r && r->is_object()) {
    if (const json::value* url = r->as_object().if_contains("clone_url"); url && url->is_string()) {
      base_repo = std::string(url->as_string());
    }
  }
  out.job.fork = base_repo != out.job.repo;
  if (out.job.fork) out.job.base_repo = base_repo;
  // Statuses go to the base repository: a pull request shows the statuses of its head commit
  // there, a fork's included, and the server's token is the base's.
  hub_link(out.job, (*base)->as_object().if_contains("repo"));
  out.action = WebhookOutcome::queue;
  return out;
}

Result<WebhookOutcome> gitlab_push(const json::value& payload, bool tag) {
  WebhookOutcome out;
  JsonReader in(payload);
  std::optional<std::string> checkout_sha;
  std::string after;
  in.required("ref", out.job.ref).optional("checkout_sha", checkout_sha).optional("after", after);
  auto project = object_at(in, "project");
  if (!project) return project.error();
  JsonReader pin(**project, "project");
  pin.required("git_http_url", out.job.repo);
  if (!pin.ok()) return pin.error();
  if (!checkout_sha || checkout_sha->empty() || all_zero(after)) {
    return ignored("branch or tag deleted");
  }
  out.job.commit = *checkout_sha;
  gitlab_link(out.job, *project);
  out.job.event = tag || out.job.ref.rfind("refs/tags/", 0) == 0 ? "tag" : "push";
  out.action = WebhookOutcome::queue;
  return out;
}

Result<WebhookOutcome> gitlab_merge_request(const json::value& payload) {
  JsonReader in(payload);
  auto attrs = object_at(in, "object_attributes");
  if (!attrs) return attrs.error();
  JsonReader ain(**attrs, "object_attributes");
  std::string action, target_branch;
  ain.optional("action", action);
  bool new_commits = (*attrs)->as_object().contains("oldrev");
  if (action != "open" && action != "reopen" && !(action == "update" && new_commits)) {
    return ignored("merge request action " + (action.empty() ? "(none)" : action));
  }
  WebhookOutcome out;
  int64_t iid = 0;
  ain.optional("iid", iid).required("target_branch", target_branch);
  ain.required("source_branch", out.job.ref);
  auto source = object_at(ain, "source");
  if (!source) return source.error();
  auto last_commit = object_at(ain, "last_commit");
  if (!last_commit) return last_commit.error();
  JsonReader sin(**source, "object_attributes.source");
  sin.required("git_http_url", out.job.repo);
  JsonReader cin(**last_commit, "object_attributes.last_commit");
  cin.required("id", out.job.commit);
  if (!sin.ok()) return sin.error();
  if (!cin.ok()) return cin.error();
  if (!ain.ok()) return ain.error();
  pull_request_env(out.job, iid, target_branch);
  // The hook's project is the merge request's target: its statuses show on the request.
  gitlab_link(out.job, payload.as_object().if_contains("project"));
  // A fork's job gets no secrets: a fork unless source and target are one project.
  const json::object& a = (*attrs)->as_object();
  const json::value* from = a.if_contains("source_project_id");
  const json::value* to = a.if_contains("target_project_id");
  out.job.fork = !(from && to && from->is_int64() && to->is_int64() &&
                   from->as_int64() == to->as_int64());
  if (const json::value* target = a.if_contains("target"); out.job.fork && target && target->is_object()) {
    if (const json::value* url = target->as_object().if_contains("git_http_url"); url && url->is_string()) {
      out.job.base_repo = std::string(url->as_string());
    }
  }
  out.action = WebhookOutcome::queue;
  return out;
}

}  // namespace

const ForgeHeaders& forge_headers(Forge forge) {
  switch (forge) {
    case Forge::github: return kGithub;
    case Forge::gitea: return kGitea;
    case Forge::gitlab: return kGitlab;
  }
  return kGithub;
}

bool webhook_authentic(Forge forge, std::string_view secret, std::string_view signature_header,
                       std::string_view body) {
  if (secret.empty() || signature_header.empty()) return false;
  if (forge == Forge::gitlab) return constant_time_equal(signature_header, secret);
  // Each forge's own form only: GitHub "sha256=<hex>", Gitea bare hex.
  if ((forge == Forge::github) != (signature_header.substr(0, 7) == "sha256=")) return false;
  return hmac_signature_valid(secret, body, signature_header);
}

std::string foreign_delivery(Forge forge, const HeaderLookup& header) {
  // Gitea also sends X-GitHub-Event (and X-Gogs-Event) with the same value as X-Gitea-Event,
  // for compatibility; GitHub and GitLab never send another forge's event header.
  std::string github = header("X-GitHub-Event"), gitea = header("X-Gitea-Event"),
              gogs = header("X-Gogs-Event"), gitlab = header("X-Gitlab-Event");
  auto refuse = [](const char* whose, const char* why, const char* endpoint) {
    return std::string("this delivery is ") + whose + "'s (" + why + "): point that webhook at " +
           endpoint + "; each endpoint takes only its own forge's deliveries and signatures";
  };
  switch (forge) {
    case Forge::github:
      if (!gitea.empty() || !gogs.empty()) return refuse("Gitea", "it has X-Gitea-Event", "/hooks/gitea");
      if (!gitlab.empty()) return refuse("GitLab", "it has X-Gitlab-Event", "/hooks/gitlab");
      return "";
    case Forge::gitea:
      if (!gitlab.empty()) return refuse("GitLab", "it has X-Gitlab-Event", "/hooks/gitlab");
      if (gitea.empty() && !github.empty()) {
        return refuse("GitHub", "X-GitHub-Event without X-Gitea-Event", "/hooks/github");
      }
      if (!github.empty() && github != gitea) {
        return refuse("GitHub", "its X-GitHub-Event is not its X-Gitea-Event", "/hooks/github");
      }
      return "";
    case Forge::gitlab:
      if (!gitea.empty() || !gogs.empty()) return refuse("Gitea", "it has X-Gitea-Event", "/hooks/gitea");
      if (!github.empty()) return refuse("GitHub", "it has X-GitHub-Event", "/hooks/github");
      return "";
  }
  return "";
}

std::string webhook_content_key(const NewJob& job) {
  std::string key = job.event + "\n" + job.repo + "\n" + job.ref + "\n" + job.commit;
  if (auto base = job.env.find("BOXCAR_PR_BASE"); base != job.env.end()) key += "\n" + base->second;
  return "sha256:" + sha256_hex(key);
}

Result<WebhookOutcome> interpret_webhook(Forge forge, const std::string& event,
                                         const json::value& payload) {
  if (!payload.is_object()) {
    return Error{"the payload: expected a JSON object, got " + protocol::json_kind(payload)};
  }
  // Statuses go to the forge the job came from; Gitea's and GitLab's APIs are at the origin of
  // the repository's web page (self-hosted), GitHub's where the server is told (--github-api-url).
  auto linked = [forge](Result<WebhookOutcome> out) {
    if (!out || out->action != WebhookOutcome::queue) return out;
    ForgeLink& link = out->job.forge;
    // The web page becomes a link in the UI: only an http(s) one is kept.
    std::string origin = web_origin(link.web_url);
    if (origin.empty()) link.web_url.clear();
    link.forge = forge_headers(forge).name;
    if (origin.empty()) return out;
    if (forge == Forge::gitea) link.api = origin + "/api/v1";
    if (forge == Forge::gitlab) link.api = origin + "/api/v4";
    return out;
  };
  if (forge == Forge::gitlab) {
    if (event == "Push Hook") return linked(gitlab_push(payload, false));
    if (event == "Tag Push Hook") return linked(gitlab_push(payload, true));
    if (event == "Merge Request Hook") return linked(gitlab_merge_request(payload));
    return ignored("event \"" + event + "\" does not start builds");
  }
  if (event == "ping") {
    WebhookOutcome out;
    out.action = WebhookOutcome::ping;
    return out;
  }
  if (event == "push") return linked(hub_push(payload));
  if (event == "pull_request") return linked(hub_pull_request(payload));
  return ignored("event \"" + event + "\" does not start builds");
}

}  // namespace boxcar::server

namespace boxcar::server {

namespace {

constexpr int64_t kReplayWindowMs = kWebhookReplayWindowMs;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void receive(ApiContext& ctx, Forge forge, HttpRequest& req, Responder& res) {
  const ForgeHeaders& h = forge_headers(forge);
  auto answer = [&](const char* result, HttpResponse response) {
    ctx.metrics.count_webhook(h.name, result);
    res.reply(std::move(response));
  };
  const bool own_token = forge == Forge::gitlab && !ctx.options.gitlab_webhook_token.empty();
  const std::string& secret = own_token ? ctx.options.gitlab_webhook_token : ctx.options.webhook_secret;
  if (secret.empty()) {
    return answer("bad_signature",
                  HttpResponse::error(401, "this server has no webhook secret: start it with "
                                           "--webhook-secret or BOXCAR_WEBHOOK_SECRET"));
  }
  if (std::string why = foreign_delivery(forge, [&](const char* name) { return req.header(name); });
      !why.empty()) {
    return answer("wrong_forge", HttpResponse::error(401, why));
  }
  if (!webhook_authentic(forge, secret, req.header(h.signature), req.body())) {
    return answer("bad_signature",
                  HttpResponse::error(401, std::string("missing or wrong ") + h.signature +
                                               ": set the webhook's secret to the server's " +
                                               (own_token ? "--gitlab-webhook-token"
                                                          : "--webhook-secret")));
  }
  std::string event = req.header(h.event);
  if (event.empty()) {
    return answer("bad_request",
                  HttpResponse::error(400, std::string("missing the ") + h.event + " header"));
  }
  auto payload = protocol::parse_json(req.body());
  if (!payload) return answer("bad_request", HttpResponse::error(400, payload.error().message));
  auto outcome = interpret_webhook(forge, event, *payload);
  if (!outcome) return answer("bad_request", HttpResponse::error(400, outcome.error().message));
  if (outcome->action == WebhookOutcome::ping) {
    return answer("ping", HttpResponse::json(200, json::object{{"ok", true}, {"ping", true}}));
  }
  // Deliveries without an id (GitLab before 15.x) are told apart by their body.
  std::string delivery = req.header(h.delivery);
  if (delivery.empty()) delivery = "sha256:" + sha256_hex(req.body());
  const char* result = outcome->action == WebhookOutcome::queue ? "queued" : "ignored";
  auto first = ctx.store.record_delivery(h.name, delivery, result);
  if (!first) return answer("error", store_error(first.error()));
  if (!*first) {
    return answer("duplicate", HttpResponse::json(200, json::object{{"duplicate", true},
                                                                    {"delivery", delivery}}));
  }
  if (outcome->action == WebhookOutcome::ignore) {
    return answer("ignored", HttpResponse::json(200, json::object{{"ignored", outcome->why}}));
  }
  // A delivery id is the sender's word; the signed body is not tied to one. The same push
  // (repository, ref, commit) seen again within a day, under a new id or at another endpoint
  // signed with the same secret, is a replay: it makes no job.
  const NewJob& job = outcome->job;
  auto fresh = ctx.store.record_webhook_content(webhook_content_key(job), now_ms(),
                                                kReplayWindowMs);
  if (!fresh) return answer("error", store_error(fresh.error()));
  if (!*fresh) {
    return answer("duplicate",
                  HttpResponse::json(200, json::object{
                      {"duplicate", true},
                      {"delivery", delivery},
                      {"why", "this " + job.event + " of " + redact_url(job.repo) + " " + job.ref +
                                  " at " + job.commit + " was received in the last 24 hours"}}));
  }
  NewJob queued = outcome->job;
  queued.max_attempts = ctx.options.max_attempts;
  if (queued.forge.can_post_status()) {
    auto name = ctx.store.last_pipeline_name(queued.repo, queued.file);
    if (!name) return answer("error", store_error(name.error()));
    queued.status_context = status_context(*name, queued.file);
  }
  auto id = ctx.store.enqueue(queued);
  if (!id) return answer("error", store_error(id.error()));
  ctx.queue_changed.notify();
  ctx.job_changed.notify();  // its "pending" commit status can go (the status sender waits on it)
  json::object body{{"queued", true}, {"id", *id}};
  // The job is queued either way: a failed supersede is said, not made the delivery's failure.
  if (auto superseded = supersede_older(ctx, *id, queued)) {
    body["superseded"] = json::value_from(*superseded);
  } else {
    body["supersede_error"] = superseded.error().message;
  }
  answer("queued", HttpResponse::json(200, std::move(body)));
}

}  // namespace

void add_webhook_routes(Router& router, ApiContext& ctx) {
  for (Forge forge : {Forge::github, Forge::gitea, Forge::gitlab}) {
    const char* name = forge_headers(forge).name;
    RouteOptions options;
    options.body_limit = ctx.options.max_webhook_body;
    options.on_too_large = [&ctx, name] { ctx.metrics.count_webhook(name, "too_large"); };
    router.add(
        http::verb::post, std::string("/hooks/") + name,
        [&ctx, forge](HttpRequest& req, std::shared_ptr<Responder> res) {
          receive(ctx, forge, req, *res);
        },
        std::move(options));
  }
}

}  // namespace boxcar::server
