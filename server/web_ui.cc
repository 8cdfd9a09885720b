// The web UI: server-rendered HTML pages, no scripts. GET / lists jobs; GET /jobs/{id} shows a
// job's steps, open previews and log. Every value from the store is escaped.
#include <boost/json.hpp>

#include "base/redact_url.h"
#include "base/terminal_escape.h"
#include "server/api.h"

namespace boxcar::server {

namespace {

constexpr size_t kMaxLogBytes = 1 << 20;

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

std::string when(const std::optional<UnixMillis>& t) { return t ? rfc3339(*t) : "-"; }

std::string duration(const std::optional<UnixMillis>& from, const std::optional<UnixMillis>& to) {
  if (!from || !to || *to < *from) return "-";
  int64_t secs = (*to - *from) / 1000;
  if (secs < 60) return std::to_string(secs) + "s";
  return std::to_string(secs / 60) + "m" + std::to_string(secs % 60) + "s";
}

std::string page(const std::string& title, const std::string& body, bool refresh) {
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
         "</style></head><body>\n" +
         body + "</body></html>\n";
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
             (p.expires_at ? " until " + rfc3339(*p.expires_at) : "") + "</li>\n";
  }
  return items.empty() ? "" : "<h2>Previews</h2>\n<ul>\n" + items + "</ul>\n";
}

void job_list(ApiContext& ctx, HttpRequest&, Responder& res) {
  auto jobs = ctx.store.jobs("", 100);
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
              "</td><td>" + rfc3339(j.created_at) + "</td><td>" +
              duration(j.started_at, j.finished_at) + "</td></tr>\n";
    }
    body += "</tbody></table>\n";
  }
  res.reply(HttpResponse::text(200, page("boxcar jobs", body, true), "text/html; charset=utf-8"));
}

void job_page(ApiContext& ctx, HttpRequest& req, Responder& res) {
  auto id = parse_job_id(req.params["id"]);
  auto job = id ? ctx.store.job(*id) : Result<std::optional<JobRecord>>(std::nullopt);
  if (!job) return res.reply(HttpResponse::text(500, "store error: " + job.error().message));
  if (!*job) {
    return res.reply(HttpResponse::text(404, page("not found", "<h1>No such job</h1>", false),
                                        "text/html; charset=utf-8"));
  }
  const JobRecord& j = **job;
  std::string id_text = std::to_string(j.id);
  std::string body = "<p><a href=\"/\">&larr; jobs</a></p><h1>Job #" + id_text + " <span class=\"" +
                     escape(j.state) + "\">" + escape(j.state) + "</span></h1>\n<table>" +
                     "<tr><th>repository</th><td>" + escape(redact_url(j.repo)) + "</td></tr>" +
                     "<tr><th>ref</th><td>" + escape(j.ref) + "</td></tr>" +
                     "<tr><th>commit</th><td><code>" + escape(j.commit) + "</code></td></tr>" +
                     "<tr><th>event</th><td>" + escape(j.event) + "</td></tr>" +
                     "<tr><th>attempt</th><td>" + std::to_string(j.attempt) + "</td></tr>" +
                     "<tr><th>started</th><td>" + when(j.started_at) + "</td></tr>" +
                     "<tr><th>finished</th><td>" + when(j.finished_at) + "</td></tr>" +
                     (j.reason.empty() ? "" : "<tr><th>reason</th><td>" + escape(j.reason) +
                                                  "</td></tr>") +
                     "</table>\n<h2>Steps</h2>\n";
  body += "<table><thead><tr><th>step</th><th>state</th><th>exit</th><th>duration</th>"
          "<th>reason</th></tr></thead><tbody>\n";
  for (const StepRecord& s : j.steps) {
    body += "<tr><td>" + escape(s.name) + "</td>" + state_cell(s.state) + "<td>" +
            (s.exit_code ? std::to_string(*s.exit_code) : "-") + "</td><td>" +
            duration(s.started_at, s.finished_at) + "</td><td>" + escape(s.reason) +
            "</td></tr>\n";
  }
  body += "</tbody></table>\n" + open_previews(ctx, j) + "<h2>Log</h2>\n<pre>";
  std::string log;
  int64_t offset = 0;
  while (log.size() < kMaxLogBytes) {
    auto chunks = ctx.store.logs(j.id, "", offset, 500);
    if (!chunks || chunks->empty()) break;
    for (const LogChunk& c : *chunks) {
      append_labelled(log, c);
      offset = c.offset + static_cast<int64_t>(c.data.size());
    }
  }
  body += escape(log) + "</pre>\n<p><a href=\"/api/v1/jobs/" + id_text +
          "/logs\">raw log</a> &middot; <a href=\"/api/v1/jobs/" + id_text + "\">JSON</a></p>\n";
  bool live = !is_final_job_state(j.state);
  res.reply(HttpResponse::text(200, page("boxcar job #" + id_text, body, live),
                               "text/html; charset=utf-8"));
}

}  // namespace

void add_web_ui_routes(Router& router, ApiContext& ctx) {
  router.add(http::verb::get, "/", [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) {
    job_list(ctx, req, *res);
  });
  router.add(http::verb::get, "/jobs/{id}",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) {
               job_page(ctx, req, *res);
             });
}

}  // namespace boxcar::server
