// The web UI's routes: sign in and out, the pages (web_job_list.cc, web_job_page.cc), the job's
// live log (server-sent events for the page's script), raw log and artifact downloads with the
// session's cookie, and the cancel and re-run forms. Pages need a session (GET/POST /login with
// an API token; web_session.h) unless the server runs with --public-read; forms that change
// state carry the session's CSRF token.
#include <boost/json.hpp>
#include <boost/url/encoding_opts.hpp>
#include <boost/url/params_view.hpp>

#include <charconv>

#include "base/random_token.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/web_assets.h"
#include "server/web_log_html.h"
#include "server/web_page.h"

namespace boxcar::server {

namespace {

constexpr size_t kMaxLogBytes = 8 << 20;
using Ui = WebUi;

// The job's log as its steps printed it (the raw log link), up to kMaxLogBytes.
std::string raw_job_log(ApiContext& ctx, int64_t id) {
  std::string log;
  int64_t offset = 0;
  while (log.size() < kMaxLogBytes) {
    auto chunks = ctx.store.logs(id, "", offset, 500);
    if (!chunks || chunks->empty()) break;
    for (const LogChunk& c : *chunks) {
      log += c.data;
      offset = c.offset + static_cast<int64_t>(c.data.size());
    }
  }
  return log;
}

// The fields of an application/x-www-form-urlencoded body; empty when it is not one.
std::map<std::string, std::string> form_fields(const HttpRequest& req) {
  std::map<std::string, std::string> out;
  std::string type = req.header("Content-Type");
  if (type.rfind("application/x-www-form-urlencoded", 0) != 0) return out;
  try {
    boost::urls::encoding_opts opts;
    opts.space_as_plus = true;
    for (auto param : boost::urls::params_view(req.body(), opts)) {
      out[std::string(param.key)] = std::string(param.value);
    }
  } catch (const std::exception&) {
    out.clear();
  }
  return out;
}

// A state-changing form is honoured only with its session's CSRF token: a page on another site
// can make the browser post the form (SameSite keeps the cookie home in current browsers; this
// holds in every browser), but it cannot read the token.
bool csrf_ok(const Viewer& viewer, const std::map<std::string, std::string>& form) {
  auto it = form.find("csrf");
  return viewer.session && it != form.end() && constant_time_equal(it->second, viewer.session->csrf);
}

HttpResponse csrf_refused(const Viewer& viewer) {
  return message_page(403, viewer, "forbidden", "This form has expired: reload the page and try again.");
}

std::string session_cookie(const Ui& ui, const std::string& value, long max_age) {
  return std::string(kSessionCookie) + "=" + value + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
         std::to_string(max_age) + (served_over_https(ui.ctx.options) ? "; Secure" : "");
}

std::string login_page(const std::string& next, const std::string& message) {
  return page_html(Viewer{}, "boxcar sign in",
              "<h1>boxcar</h1>\n" +
                  (message.empty() ? std::string() : "<p class=\"failed\">" + escape_html(message) + "</p>\n") +
                  "<form method=\"post\" action=\"/login\">"
                  "<label>API token <input type=\"password\" name=\"token\" "
                  "autocomplete=\"current-password\" autofocus required></label> "
                  "<input type=\"hidden\" name=\"next\" value=\"" + escape_html(safe_next(next)) + "\">"
                  "<button>Sign in</button></form>\n"
                  "<p>Any API token of this server: <code>serve --api-token</code>, a token of "
                  "<code>--api-tokens</code>, or the one serve wrote to "
                  "<code>&lt;data&gt;/api-token</code>.</p>\n");
}

void login_form(Ui&, HttpRequest& req, Responder& res) {
  res.reply(html_response(200, login_page(req.query_or("next", "/"), "")));
}

void login(Ui& ui, HttpRequest& req, Responder& res) {
  // Login CSRF: another site must not sign this browser in (as its own token's holder).
  if (req.header("Sec-Fetch-Site") == "cross-site") {
    return res.reply(message_page(403, Viewer{}, "forbidden", "Sign in from this server's own page"));
  }
  auto form = form_fields(req);
  std::string next = form.count("next") ? form["next"] : "/";
  const ApiToken* token = find_api_token(ui.ctx.options.api_tokens, form["token"]);
  if (!token) return res.reply(html_response(401, login_page(next, "That token is not valid here.")));
  auto session = ui.sessions.create(*token);
  if (!session) return res.reply(message_page(500, Viewer{}, "error", session.error().message));
  HttpResponse r = redirect_response(safe_next(next));
  r.headers.emplace_back("Set-Cookie", session_cookie(ui, session->id, ui.sessions.lifetime().count()));
  res.reply(std::move(r));
}

void logout(Ui& ui, HttpRequest& req, Responder& res) {
  Viewer viewer = viewer_of(ui, req);
  if (viewer.session && !csrf_ok(viewer, form_fields(req))) return res.reply(csrf_refused(viewer));
  if (viewer.session) ui.sessions.remove(viewer.session->id);
  HttpResponse r = redirect_response("/login");
  r.headers.emplace_back("Set-Cookie", session_cookie(ui, "", 0));
  res.reply(std::move(r));
}

// The job of the request's {id}; nullopt once `res` was answered (404 or 500).
std::optional<JobRecord> request_job(Ui& ui, HttpRequest& req, Responder& res, const Viewer& viewer) {
  auto id = parse_job_id(req.params["id"]);
  auto job = id ? ui.ctx.store.job(*id) : Result<std::optional<JobRecord>>(std::nullopt);
  if (!job) {
    res.reply(message_page(500, viewer, "error", "store error: " + job.error().message));
    return std::nullopt;
  }
  if (!*job) res.reply(message_page(404, viewer, "not found", "No such job"));
  return std::move(*job);
}

void raw_log(Ui& ui, HttpRequest& req, Responder& res) {
  Viewer viewer = viewer_of(ui, req);
  if (auto refused = require_reader(ui, viewer, req)) return res.reply(std::move(*refused));
  auto job = request_job(ui, req, res, viewer);
  if (!job) return;
  HttpResponse r = HttpResponse::text(200, raw_job_log(ui.ctx, job->id));
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Content-Security-Policy", "sandbox");
  r.headers.emplace_back("Cache-Control", "no-store");
  res.reply(std::move(r));
}

// The job page's live log: the API's follower (same caps, same resume by Last-Event-ID), with
// each chunk as lines of styled runs (web_log_html.h) that the script sets as text. Readers
// as for the pages: a session with read, or anyone under --public-read.
void live_log(Ui& ui, HttpRequest& req, std::shared_ptr<Responder> res) {
  Viewer viewer = viewer_of(ui, req);
  if (!viewer.allows(Scope::read) && (viewer.session || !ui.ctx.options.public_read)) {
    return res->reply(HttpResponse::error(viewer.session ? 403 : 401, "sign in to follow this log"));
  }
  auto job = request_job(ui, req, *res, viewer);
  if (!job) return;
  std::string from = req.query_or("offset", "0");
  if (std::string resume = req.header("Last-Event-ID"); !resume.empty()) from = resume;
  int64_t offset = 0;
  auto [end, ec] = std::from_chars(from.data(), from.data() + from.size(), offset);
  if (ec != std::errc() || end != from.data() + from.size() || offset < 0) {
    return res->reply(HttpResponse::error(400, "\"offset\": expected a byte offset, got \"" + from + "\""));
  }
  follow_job_log(ui.ctx, req, std::move(res), job->id, "", offset,
                 [](const LogChunk& chunk, std::string_view data) {
                   return boost::json::object{{"step", chunk.step},
                                              {"lines", lines_json(log_lines(data))}};
                 });
}

void artifact(Ui& ui, HttpRequest& req, std::shared_ptr<Responder> res) {
  Viewer viewer = viewer_of(ui, req);
  if (auto refused = require_reader(ui, viewer, req)) return res->reply(std::move(*refused));
  download_artifact(ui.ctx, req, std::move(res));
}

// nullopt when the viewer may post this form (a session with `write` and its CSRF token).
std::optional<HttpResponse> check_writer(const Viewer& viewer, const HttpRequest& req,
                                         const std::map<std::string, std::string>& form,
                                         const std::string& what) {
  if (!viewer.session) return redirect_response("/login?next=" + safe_next("/jobs/" + req.params.at("id")));
  if (!csrf_ok(viewer, form)) return csrf_refused(viewer);
  if (!viewer.allows(Scope::write)) return message_page(403, viewer, "forbidden", "Your token cannot " + what);
  return std::nullopt;
}

void cancel(Ui& ui, HttpRequest& req, Responder& res) {
  Viewer viewer = viewer_of(ui, req);
  if (auto refused = check_writer(viewer, req, form_fields(req), "cancel jobs")) return res.reply(std::move(*refused));
  auto id = parse_job_id(req.params["id"]);
  auto found = id ? ui.ctx.store.request_cancel(*id, now_ms()) : Result<bool>(false);
  if (!found) return res.reply(message_page(500, viewer, "error", "store error: " + found.error().message));
  if (!*found) return res.reply(message_page(404, viewer, "not found", "No such job"));
  ui.ctx.job_changed.notify();
  res.reply(redirect_response("/jobs/" + std::to_string(*id)));
}

// A new job for the same commit (server/api.h rerun_job), then its page.
void rerun(Ui& ui, HttpRequest& req, Responder& res) {
  Viewer viewer = viewer_of(ui, req);
  auto form = form_fields(req);
  if (auto refused = check_writer(viewer, req, form, "re-run jobs")) return res.reply(std::move(*refused));
  auto job = request_job(ui, req, res, viewer);
  if (!job) return;
  auto id = rerun_job(ui.ctx, *job, form["failed"] == "1");
  if (!id) {
    unsigned status = id.error().code == ErrorCode::usage ? 409 : 500;
    return res.reply(message_page(status, viewer, "cannot re-run", "Cannot re-run job #" +
                                                                       std::to_string(job->id) + ": " +
                                                                       id.error().message));
  }
  ui.ctx.queue_changed.notify();
  res.reply(redirect_response("/jobs/" + std::to_string(*id)));
}

}  // namespace

void add_web_ui_routes(Router& router, ApiContext& ctx) {
  auto ui = std::make_shared<WebUi>(ctx);
  auto route = [ui](void (*f)(Ui&, HttpRequest&, Responder&)) {
    return [ui, f](HttpRequest& req, std::shared_ptr<Responder> res) { f(*ui, req, *res); };
  };
  RouteOptions form;
  form.body_limit = 16 << 10;
  auto stream = [ui](void (*f)(Ui&, HttpRequest&, std::shared_ptr<Responder>)) {
    return [ui, f](HttpRequest& req, std::shared_ptr<Responder> res) { f(*ui, req, std::move(res)); };
  };
  add_web_asset_routes(router);
  router.add(http::verb::get, "/", route(job_list_page));
  router.add(http::verb::get, "/jobs/{id}", route(job_page));
  router.add(http::verb::get, "/jobs/{id}/log", route(raw_log));
  router.add(http::verb::get, "/jobs/{id}/events", stream(live_log));
  router.add(http::verb::get, "/jobs/{id}/artifacts/{path...}", stream(artifact));
  router.add(http::verb::post, "/jobs/{id}/cancel", route(cancel), form);
  router.add(http::verb::post, "/jobs/{id}/rerun", route(rerun), form);
  router.add(http::verb::get, "/login", route(login_form));
  router.add(http::verb::post, "/login", route(login), form);
  router.add(http::verb::post, "/logout", route(logout), form);
}

}  // namespace boxcar::server
