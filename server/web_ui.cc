// The web UI: server-rendered HTML pages, no scripts. GET / lists jobs; GET /jobs/{id} shows a
// job's steps, open previews and log. Every value from the store is escaped. Pages need a
// session (GET/POST /login with an API token; web_session.h) unless the server runs with
// --public-read; forms that change state carry the session's CSRF token.
#include <boost/json.hpp>
#include <boost/url/encoding_opts.hpp>
#include <boost/url/params_view.hpp>

#include "base/random_token.h"
#include "base/rfc3339.h"
#include "base/terminal_escape.h"
#include "base/url.h"
#include "server/web_forge_statuses.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/web_session.h"

namespace boxcar::server {

namespace {

constexpr size_t kMaxLogBytes = 1 << 20;
constexpr std::string_view kCookie = "boxcar_session";
constexpr const char* kHtml = "text/html; charset=utf-8";

// The UI's state shared by its routes: the server's context and the sessions of this process.
struct Ui {
  explicit Ui(ApiContext& c) : ctx(c) {}
  ApiContext& ctx;
  WebSessions sessions;
};

// Who is looking at a page: a logged-in session, or nobody (anonymous).
struct Viewer {
  std::optional<WebSessions::Session> session;
  bool allows(Scope scope) const { return session && session->token.allows(scope); }
};

// `[step] line` for every line of a step, as `boxcar logs` prints it, so that a step cannot print
// a line that passes for the job's own (those, logged under "(job)", stay bare). Control bytes
// are shown escaped as on a terminal: a browser would turn a lone '\r' into a line break.
void append_labelled(std::string& log, const LogChunk& c) {
  bool job = c.step.empty() || c.step == "(job)";
  std::string_view data = c.data;
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (!job) log += "[" + escape_for_terminal(c.step) + "] ";
    TerminalEscaper e;
    e.feed(data.substr(0, nl), log);
    e.end_line(log);
    log += '\n';
    if (nl == std::string_view::npos) break;
    data.remove_prefix(nl + 1);
  }
}

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string when(const std::optional<UnixMillis>& t) { return t ? format_rfc3339(*t) : "-"; }

std::string duration(const std::optional<UnixMillis>& from, const std::optional<UnixMillis>& to) {
  if (!from || !to || *to < *from) return "-";
  int64_t secs = (*to - *from) / 1000;
  if (secs < 60) return std::to_string(secs) + "s";
  return std::to_string(secs / 60) + "m" + std::to_string(secs % 60) + "s";
}

std::string nav(const Viewer& viewer) {
  if (!viewer.session) return "<nav><a href=\"/login\">sign in</a></nav>\n";
  return "<nav>signed in as " + escape(viewer.session->token.name) +
         " <form method=\"post\" action=\"/logout\" style=\"display:inline\">"
         "<input type=\"hidden\" name=\"csrf\" value=\"" + escape(viewer.session->csrf) +
         "\"><button>sign out</button></form></nav>\n";
}

std::string page(const std::string& title, const std::string& body, bool refresh,
                 const std::string& top = "") {
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">" +
         std::string(refresh ? "<meta http-equiv=\"refresh\" content=\"5\">" : "") + "<title>" +
         escape(title) +
         "</title><style>"
         "body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
         "table{border-collapse:collapse}td,th{padding:.3em .8em;text-align:left;"
         "border-bottom:1px solid #ddd}code,pre{font:13px ui-monospace,monospace}"
         "pre{background:#f6f6f6;padding:1em;overflow:auto;max-height:70vh}"
         ".success{color:#1a7f37}.failed,.error,.oom,.timeout{color:#cf222e}"
         ".running{color:#9a6700}.queued,.pending,.skipped,.cancelled{color:#777}"
         "nav{float:right}"
         "</style></head><body>\n" +
         top + body + "</body></html>\n";
}

std::string state_cell(const std::string& state) {
  return "<td class=\"" + escape(state) + "\">" + escape(state) + "</td>";
}

// Agents report preview URLs: only http(s) ones become links, so a javascript: URL never runs.
std::string link(const std::string& url) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return "<code>" + escape(url) + "</code>";
  }
  return "<a href=\"" + escape(url) + "\">" + escape(url) + "</a>";
}

// The job's open previews as a list of links; "" when it has none (or the store failed: the
// rest of the page is still worth showing).
std::string open_previews(ApiContext& ctx, const JobRecord& j) {
  auto all = ctx.store.previews(j.id);
  if (!all) return "";
  UnixMillis now = now_ms();
  std::string items;
  for (const PreviewRecord& p : *all) {
    if (!preview_open(p, j, now)) continue;
    items += "<li>" + escape(p.step) + " &middot; " + escape(p.name) + " (port " +
             std::to_string(p.port) + "): " + link(p.url) + " &middot; " + link(p.path_url) +
             (p.expires_at ? " until " + format_rfc3339(*p.expires_at) : "") + "</li>\n";
  }
  return items.empty() ? "" : "<h2>Previews</h2>\n<ul>\n" + items + "</ul>\n";
}

HttpResponse html(unsigned status, std::string body) {
  HttpResponse r = HttpResponse::text(status, std::move(body), kHtml);
  // Pages are per viewer: no shared cache keeps one viewer's page for another.
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  return r;
}

HttpResponse redirect(const std::string& location) {
  HttpResponse r = HttpResponse::text(303, "", "");
  r.headers.emplace_back("Location", location);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

Viewer viewer_of(Ui& ui, const HttpRequest& req) {
  return Viewer{ui.sessions.find(cookie_value(req.header("Cookie"), kCookie))};
}

// Where a login may send the browser back to: the job list or a job page, nothing else (never
// another site).
std::string safe_next(const std::string& next) {
  if (next.rfind("/jobs/", 0) == 0 && parse_job_id(next.substr(6))) return next;
  return "/";
}

// nullopt when `viewer` may read pages; otherwise the answer: the login page's address.
std::optional<HttpResponse> require_reader(Ui& ui, const Viewer& viewer, const HttpRequest& req) {
  if (viewer.allows(Scope::read) || (!viewer.session && ui.ctx.options.public_read)) {
    return std::nullopt;
  }
  if (viewer.session) return html(403, page("forbidden", "<h1>Your token cannot read jobs</h1>", false, nav(viewer)));
  return redirect("/login?next=" + safe_next(req.path));
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
  return html(403, page("forbidden",
                        "<h1>This form has expired</h1><p>Reload the page and try again.</p>",
                        false, nav(viewer)));
}

std::string session_cookie(const Ui& ui, const std::string& value, long max_age) {
  return std::string(kCookie) + "=" + value + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
         std::to_string(max_age) + (served_over_https(ui.ctx.options) ? "; Secure" : "");
}

std::string login_page(const std::string& next, const std::string& message) {
  return page("boxcar sign in",
              "<h1>boxcar</h1>\n" +
                  (message.empty() ? std::string() : "<p class=\"failed\">" + escape(message) + "</p>\n") +
                  "<form method=\"post\" action=\"/login\">"
                  "<label>API token <input type=\"password\" name=\"token\" "
                  "autocomplete=\"current-password\" autofocus required></label> "
                  "<input type=\"hidden\" name=\"next\" value=\"" + escape(safe_next(next)) + "\">"
                  "<button>Sign in</button></form>\n"
                  "<p>Any API token of this server: <code>serve --api-token</code>, a token of "
                  "<code>--api-tokens</code>, or the one serve wrote to "
                  "<code>&lt;data&gt;/api-token</code>.</p>\n",
              false);
}

void login_form(Ui&, HttpRequest& req, Responder& res) {
  res.reply(html(200, login_page(req.query_or("next", "/"), "")));
}

void login(Ui& ui, HttpRequest& req, Responder& res) {
  // Login CSRF: another site must not sign this browser in (as its own token's holder).
  if (req.header("Sec-Fetch-Site") == "cross-site") {
    return res.reply(html(403, page("forbidden", "<h1>Sign in from this server's own page</h1>", false)));
  }
  auto form = form_fields(req);
  std::string next = form.count("next") ? form["next"] : "/";
  const ApiToken* token = find_api_token(ui.ctx.options.api_tokens, form["token"]);
  if (!token) return res.reply(html(401, login_page(next, "That token is not valid here.")));
  auto session = ui.sessions.create(*token);
  if (!session) return res.reply(html(500, page("error", "<h1>" + escape(session.error().message) + "</h1>", false)));
  HttpResponse r = redirect(safe_next(next));
  r.headers.emplace_back("Set-Cookie", session_cookie(ui, session->id, ui.sessions.lifetime().count()));
  res.reply(std::move(r));
}

void logout(Ui& ui, HttpRequest& req, Responder& res) {
  Viewer viewer = viewer_of(ui, req);
  if (viewer.session && !csrf_ok(viewer, form_fields(req))) return res.reply(csrf_refused(viewer));
  if (viewer.session) ui.sessions.remove(viewer.session->id);
  HttpResponse r = redirect("/login");
  r.headers.emplace_back("Set-Cookie", session_cookie(ui, "", 0));
  res.reply(std::move(r));
}

void job_list(Ui& ui, HttpRequest& req, Responder& res) {
  Viewer viewer = viewer_of(ui, req);
  if (auto refused = require_reader(ui, viewer, req)) return res.reply(std::move(*refused));
  auto jobs = ui.ctx.store.jobs("", 100);
  if (!jobs) return res.reply(HttpResponse::text(500, "store error: " + jobs.error().message));
  std::string body = "<h1>boxcar</h1>\n";
  if (jobs->empty()) {
    body += "<p>No jobs yet. Point a forge webhook at <code>/hooks/github</code>, "
            "<code>/hooks/gitea</code> or <code>/hooks/gitlab</code>, or run "
            "<code>boxcar submit</code>.</p>\n";
  } else {
    body += "<table><thead><tr><th>job</th><th>state</th><th>repository</th><th>ref</th>"
            "<th>commit</th><th>event</th><th>created</th><th>duration</th></tr></thead>"
            "<tbody>\n";
    for (const JobRecord& j : *jobs) {
      std::string id = std::to_string(j.id);
      body += "<tr><td><a href=\"/jobs/" + id + "\">#" + id + "</a></td>" + state_cell(j.state) +
              "<td>" + escape(redact_url(j.repo)) + "</td><td>" + escape(j.ref) + "</td><td><code>" +
              escape(j.commit.substr(0, 12)) + "</code></td><td>" + escape(j.event) +
              "</td><td>" + format_rfc3339(j.created_at) + "</td><td>" +
              duration(j.started_at, j.finished_at) + "</td></tr>\n";
    }
    body += "</tbody></table>\n";
  }
  res.reply(html(200, page("boxcar jobs", body, true, nav(viewer))));
}

// The job's log: raw bytes, or `labelled` as the job page shows it (append_labelled).
std::string job_log(ApiContext& ctx, int64_t id, bool labelled = false) {
  std::string log;
  int64_t offset = 0;
  while (log.size() < kMaxLogBytes) {
    auto chunks = ctx.store.logs(id, "", offset, 500);
    if (!chunks || chunks->empty()) break;
    for (const LogChunk& c : *chunks) {
      if (labelled) {
        append_labelled(log, c);
      } else {
        log += c.data;
      }
      offset = c.offset + static_cast<int64_t>(c.data.size());
    }
  }
  return log;
}

// The job of the page's {id}; nullopt once `res` was answered (404 or 500).
std::optional<JobRecord> page_job(Ui& ui, HttpRequest& req, Responder& res, const Viewer& viewer) {
  auto id = parse_job_id(req.params["id"]);
  auto job = id ? ui.ctx.store.job(*id) : Result<std::optional<JobRecord>>(std::nullopt);
  if (!job) {
    res.reply(HttpResponse::text(500, "store error: " + job.error().message));
    return std::nullopt;
  }
  if (!*job) res.reply(html(404, page("not found", "<h1>No such job</h1>", false, nav(viewer))));
  return std::move(*job);
}

void job_page(Ui& ui, HttpRequest& req, Responder& res) {
  Viewer viewer = viewer_of(ui, req);
  if (auto refused = require_reader(ui, viewer, req)) return res.reply(std::move(*refused));
  auto job = page_job(ui, req, res, viewer);
  if (!job) return;
  const JobRecord& j = *job;
  std::string id_text = std::to_string(j.id);
  std::string body = "<p><a href=\"/\">&larr; jobs</a></p><h1>Job #" + id_text + " <span class=\"" +
                     escape(j.state) + "\">" + escape(j.state) + "</span></h1>\n<table>" +
                     "<tr><th>repository</th><td>" + escape(redact_url(j.repo)) + "</td></tr>" +
                     "<tr><th>ref</th><td>" + escape(j.ref) + "</td></tr>" +
                     "<tr><th>commit</th><td><code>" + escape(j.commit) + "</code></td></tr>" +
                     "<tr><th>event</th><td>" + escape(j.event) + "</td></tr>" +
                     "<tr><th>attempt</th><td>" + std::to_string(j.attempt) + " of " +
                     std::to_string(j.max_attempts) + "</td></tr>" +
                     "<tr><th>started</th><td>" + when(j.started_at) + "</td></tr>" +
                     "<tr><th>finished</th><td>" + when(j.finished_at) + "</td></tr>" +
                     (j.reason.empty() ? "" : "<tr><th>reason</th><td>" + escape(j.reason) +
                                                  "</td></tr>") +
                     (j.log_truncated ? "<tr><th>log</th><td>truncated at the server's limit "
                                        "(--max-job-log): its end is dropped</td></tr>"
                                      : "") +
                     "</table>\n";
  if (viewer.allows(Scope::write) && !is_final_job_state(j.state)) {
    body += "<form method=\"post\" action=\"/jobs/" + id_text + "/cancel\">"
            "<input type=\"hidden\" name=\"csrf\" value=\"" + escape(viewer.session->csrf) +
            "\"><button>Cancel job</button></form>\n";
  }
  body += "<h2>Steps</h2>\n<table><thead><tr><th>step</th><th>state</th><th>exit</th>"
          "<th>duration</th><th>reason</th></tr></thead><tbody>\n";
  for (const StepRecord& s : j.steps) {
    body += "<tr><td>" + escape(s.name) + "</td>" + state_cell(s.state) + "<td>" +
            (s.exit_code ? std::to_string(*s.exit_code) : "-") + "</td><td>" +
            duration(s.started_at, s.finished_at) + "</td><td>" + escape(s.reason) +
            "</td></tr>\n";
  }
  body += "</tbody></table>\n";
  // A preview link holds the token that opens it: only for a signed-in reader.
  if (viewer.allows(Scope::read)) body += open_previews(ui.ctx, j);
  if (auto statuses = ui.ctx.store.forge_statuses(j.id)) body += forge_statuses_html(*statuses);
  body += "<h2>Log</h2>\n<pre>" + escape(job_log(ui.ctx, j.id, true)) + "</pre>\n<p><a href=\"/jobs/" +
          id_text + "/log\">raw log</a></p>\n";
  bool live = !is_final_job_state(j.state);
  res.reply(html(200, page("boxcar job #" + id_text, body, live, nav(viewer))));
}

void raw_log(Ui& ui, HttpRequest& req, Responder& res) {
  Viewer viewer = viewer_of(ui, req);
  if (auto refused = require_reader(ui, viewer, req)) return res.reply(std::move(*refused));
  auto job = page_job(ui, req, res, viewer);
  if (!job) return;
  HttpResponse r = HttpResponse::text(200, job_log(ui.ctx, job->id));
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Content-Security-Policy", "sandbox");
  r.headers.emplace_back("Cache-Control", "no-store");
  res.reply(std::move(r));
}

void cancel(Ui& ui, HttpRequest& req, Responder& res) {
  Viewer viewer = viewer_of(ui, req);
  if (!viewer.session) return res.reply(redirect("/login?next=" + safe_next("/jobs/" + req.params["id"])));
  if (!csrf_ok(viewer, form_fields(req))) return res.reply(csrf_refused(viewer));
  if (!viewer.allows(Scope::write)) {
    return res.reply(html(403, page("forbidden", "<h1>Your token cannot cancel jobs</h1>", false, nav(viewer))));
  }
  auto id = parse_job_id(req.params["id"]);
  auto found = id ? ui.ctx.store.request_cancel(*id, now_ms()) : Result<bool>(false);
  if (!found) return res.reply(HttpResponse::text(500, "store error: " + found.error().message));
  if (!*found) return res.reply(html(404, page("not found", "<h1>No such job</h1>", false, nav(viewer))));
  ui.ctx.job_changed.notify();
  res.reply(redirect("/jobs/" + std::to_string(*id)));
}

}  // namespace

void add_web_ui_routes(Router& router, ApiContext& ctx) {
  auto ui = std::make_shared<Ui>(ctx);
  auto route = [ui](void (*f)(Ui&, HttpRequest&, Responder&)) {
    return [ui, f](HttpRequest& req, std::shared_ptr<Responder> res) { f(*ui, req, *res); };
  };
  RouteOptions form;
  form.body_limit = 16 << 10;
  router.add(http::verb::get, "/", route(job_list));
  router.add(http::verb::get, "/jobs/{id}", route(job_page));
  router.add(http::verb::get, "/jobs/{id}/log", route(raw_log));
  router.add(http::verb::post, "/jobs/{id}/cancel", route(cancel), form);
  router.add(http::verb::get, "/login", route(login_form));
  router.add(http::verb::post, "/login", route(login), form);
  router.add(http::verb::post, "/logout", route(logout), form);
}

}  // namespace boxcar::server
