// REST API for jobs: submit, list, show, cancel (DESIGN.md section 6).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>

#include <boost/json.hpp>

#include "base/exec_limits.h"
#include "base/rfc3339.h"
#include "base/url.h"
#include "protocol/agent_protocol.h"
#include "protocol/json_reader.h"
#include "server/api.h"
#include "server/web_forge_statuses.h"
#include "server/auth.h"

namespace boxcar::server {

namespace json = boost::json;

UnixMillis now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

json::value rfc3339_or_null(const std::optional<UnixMillis>& t) {
  return t ? json::value(format_rfc3339(*t)) : json::value(nullptr);
}

namespace {

json::value step_to_json(const StepRecord& s) {
  return {{"name", s.name},
          {"state", s.state},
          {"exit_code", s.exit_code ? json::value(*s.exit_code) : json::value(nullptr)},
          {"started_at", rfc3339_or_null(s.started_at)},
          {"finished_at", rfc3339_or_null(s.finished_at)},
          {"reason", s.reason},
          {"needs", json::value_from(s.needs)}};
}

bool known_job_state(const std::string& state) {
  for (const char* s : kJobStates) {
    if (state == s) return true;
  }
  return false;
}

std::string job_states_list() {
  std::string out;
  for (const char* s : kJobStates) out += (out.empty() ? "" : ", ") + std::string(s);
  return out;
}

Result<NewJob> new_job_from_body(const std::string& body) {
  auto v = protocol::parse_json(body);
  if (!v) return Error{v.error().message + " (send a JSON object like {\"repo\": \"URL\"})"};
  NewJob job;
  protocol::JsonReader in(*v);
  in.required("repo", job.repo).optional("ref", job.ref).optional("commit", job.commit);
  in.optional("file", job.file).optional("env", job.env).optional("labels", job.labels);
  if (!in.ok()) return in.error();
  if (job.repo.empty()) return Error{"\"repo\": must not be empty (a clone URL or a path)"};
  for (const auto& [name, value] : job.env) {
    if (name.empty() || name.find('=') != std::string::npos) {
      return Error{"\"env\": bad variable name \"" + name + "\" (no '=', not empty)"};
    }
    if (name.size() + 1 + value.size() > kMaxEnvVarBytes) {
      return Error{"\"env\": " + name + "=value is " +
                   std::to_string(name.size() + 1 + value.size()) + " bytes, over the limit of " +
                   std::to_string(kMaxEnvVarBytes) +
                   " for one environment variable (the kernel refuses longer ones when it starts "
                   "a step): put larger data in the repository"};
    }
  }
  job.event = "manual";
  return job;
}

void create_job(ApiContext& ctx, HttpRequest& req, Responder& res) {
  auto job = new_job_from_body(req.body());
  if (!job) return res.reply(HttpResponse::error(400, job.error().message));
  job->max_attempts = ctx.options.max_attempts;
  auto id = ctx.store.enqueue(*job);
  if (!id) return res.reply(store_error(id.error()));
  ctx.queue_changed.notify();
  HttpResponse r = HttpResponse::json(201, json::object{{"id", *id}});
  r.headers.emplace_back("Location", "/api/v1/jobs/" + std::to_string(*id));
  res.reply(std::move(r));
}

void list_jobs(ApiContext& ctx, HttpRequest& req, Responder& res) {
  std::string state = req.query_or("state", "");
  if (!state.empty() && !known_job_state(state)) {
    return res.reply(HttpResponse::error(
        400, "unknown state \"" + state + "\" (one of " + job_states_list() + ")"));
  }
  int limit = 50;
  std::string limit_text = req.query_or("limit", "50");
  auto [end, ec] = std::from_chars(limit_text.data(), limit_text.data() + limit_text.size(), limit);
  if (ec != std::errc() || end != limit_text.data() + limit_text.size() || limit < 1 ||
      limit > 1000) {
    return res.reply(HttpResponse::error(400, "\"limit\": expected an integer from 1 to 1000"));
  }
  JobQuery query;
  query.state = state;
  query.limit = limit;
  query.repo = req.query_or("repo", "");
  query.ref = req.query_or("ref", "");
  if (std::string before = req.query_or("before", ""); !before.empty()) {
    query.before_id = parse_job_id(before);
    if (!query.before_id) {
      return res.reply(HttpResponse::error(
          400, "\"before\": expected a job id (a positive integer; the last id of the page before)"));
    }
  }
  auto jobs = ctx.store.jobs(query);
  if (!jobs) return res.reply(store_error(jobs.error()));
  json::array out;
  for (const auto& j : *jobs) out.push_back(job_to_json(j));
  res.reply(HttpResponse::json(200, json::object{{"jobs", std::move(out)}}));
}

void show_job(ApiContext& ctx, HttpRequest& req, Responder& res) {
  auto job = job_of_request(ctx, req, res);
  if (!job) return;
  json::value body = job_to_json(*job);
  // Only here, not in lists: one more query per job.
  auto statuses = ctx.store.forge_statuses(job->id);
  if (!statuses) return res.reply(store_error(statuses.error()));
  body.as_object()["statuses"] = forge_statuses_json(*statuses);
  res.reply(HttpResponse::json(200, body));
}

void cancel_job(ApiContext& ctx, HttpRequest& req, Responder& res) {
  auto id = parse_job_id(req.params["id"]);
  if (!id) return res.reply(HttpResponse::error(404, "no such job: " + req.params["id"]));
  auto found = ctx.store.request_cancel(*id, now_ms());
  if (!found) return res.reply(store_error(found.error()));
  if (!*found) return res.reply(HttpResponse::error(404, "no such job: " + std::to_string(*id)));
  ctx.job_changed.notify();  // a queued job is now final: its followers end
  auto job = ctx.store.job(*id);
  json::object body{{"id", *id}};
  bool previews_closing = false;
  if (job && *job) {
    body["state"] = (*job)->state;
    body["cancel_requested"] = (*job)->cancel_requested;
    // A final job's cancel reaches only its agent's previews (request_cancel).
    if (is_final_job_state((*job)->state) && (*job)->cancel_requested) {
      auto previews = ctx.store.previews(*id);
      UnixMillis now = now_ms();
      previews_closing = previews && std::any_of(previews->begin(), previews->end(),
                                                 [&](const PreviewRecord& p) {
                                                   return preview_open(p, **job, now);
                                                 });
    }
  }
  body["previews_closing"] = previews_closing;
  res.reply(HttpResponse::json(202, body));
}

}  // namespace

json::value job_to_json(const JobRecord& job) {
  json::array steps;
  for (const auto& s : job.steps) steps.push_back(step_to_json(s));
  json::array labels;
  for (const auto& l : job.labels) labels.emplace_back(l);
  return {{"id", job.id},
          {"state", job.state},
          {"repo", redact_url(job.repo)},  // a token in the URL is the submitter's, not the public's
          {"ref", job.ref},
          {"commit", job.commit},
          {"file", job.file},
          {"event", job.event},
          {"labels", std::move(labels)},
          {"attempt", job.attempt},
          {"max_attempts", job.max_attempts},
          {"created_at", format_rfc3339(job.created_at)},
          {"started_at", rfc3339_or_null(job.started_at)},
          {"finished_at", rfc3339_or_null(job.finished_at)},
          {"cancel_requested", job.cancel_requested},
          {"reason", job.reason},
          {"log_bytes", job.log_bytes},
          {"log_truncated", job.log_truncated},
          {"pipeline", job.pipeline_name},
          {"cancel_superseded",
           job.cancel_superseded ? json::value(*job.cancel_superseded) : json::value(nullptr)},
          {"forge", job.forge.forge},
          {"commit_url", job.forge.commit_url(job.commit)},
          {"rerun_of", job.rerun_of ? json::value(*job.rerun_of) : json::value(nullptr)},
          {"superseded_by",
           job.superseded_by ? json::value(*job.superseded_by) : json::value(nullptr)},
          {"steps", std::move(steps)}};
}

std::optional<int64_t> parse_job_id(const std::string& text) {
  int64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

std::optional<JobRecord> job_of_request(ApiContext& ctx, HttpRequest& req, Responder& res) {
  auto id = parse_job_id(req.params["id"]);
  if (!id) {
    res.reply(HttpResponse::error(404, "no such job: " + req.params["id"]));
    return std::nullopt;
  }
  auto job = ctx.store.job(*id);
  if (!job) {
    res.reply(store_error(job.error()));
    return std::nullopt;
  }
  if (!*job) res.reply(HttpResponse::error(404, "no such job: " + std::to_string(*id)));
  return std::move(*job);
}

HttpResponse store_error(const Error& error) {
  return HttpResponse::error(500, "store error: " + error.message);
}

void add_job_routes(Router& router, ApiContext& ctx) {
  auto route = [&ctx](void (*f)(ApiContext&, HttpRequest&, Responder&)) {
    return [&ctx, f](HttpRequest& req, std::shared_ptr<Responder> res) { f(ctx, req, *res); };
  };
  RouteOptions write = requires_scope(ctx, Scope::write);
  RouteOptions read = requires_scope(ctx, Scope::read, Anonymous::public_read);
  RouteOptions submit = write;
  submit.body_limit = protocol::kMaxJobBodyBytes;  // what an agent can still claim
  router.add(http::verb::post, "/api/v1/jobs", route(create_job), submit);
  router.add(http::verb::get, "/api/v1/jobs", route(list_jobs), read);
  router.add(http::verb::get, "/api/v1/jobs/{id}", route(show_job), read);
  router.add(http::verb::post, "/api/v1/jobs/{id}/cancel", route(cancel_job), write);
}

}  // namespace boxcar::server
