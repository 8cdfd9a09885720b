// The web UI's job page (GET /jobs/{id}): the job's header, its step graph, its open previews
// and artifacts, cancel and re-run buttons, and each step's log in its own section. While the
// job runs, the page's script (web_assets.cc) follows the log live from where the page left
// off; without the script the page shows the log as it was when loaded, with a refresh link.
#include <map>

#include "base/rfc3339.h"
#include "base/url.h"
#include "server/web_assets.h"
#include "server/web_forge_statuses.h"
#include "server/web_log_html.h"
#include "server/rerun.h"
#include "server/web_page.h"
#include "server/web_step_graph.h"

namespace boxcar::server {

namespace {

constexpr size_t kMaxPageLogBytes = 1 << 20;
constexpr std::string_view kJobNotes = "(job)";

std::string job_link(int64_t id) {
  std::string text = std::to_string(id);
  return "<a href=\"/jobs/" + text + "\">#" + text + "</a>";
}

std::string header(const JobRecord& j) {
  auto row = [](const std::string& name, const std::string& html) {
    return "<tr><th>" + name + "</th><td>" + html + "</td></tr>";
  };
  std::string commit = j.commit.empty() ? std::string("-")
                                        : "<code>" + link_html(j.forge.commit_url(j.commit), j.commit) + "</code>";
  std::string out = "<table class=\"header\">" + row("repository", escape_html(redact_url(j.repo))) +
                    row("ref", escape_html(j.ref)) + row("commit", commit) +
                    row("event", escape_html(j.event));
  if (!j.pipeline_name.empty()) out += row("pipeline", escape_html(j.pipeline_name));
  out += row("attempt", std::to_string(j.attempt) + " of " + std::to_string(j.max_attempts));
  out += row("created", format_rfc3339(j.created_at)) + row("started", when_html(j.started_at)) +
         row("finished", when_html(j.finished_at)) +
         row("duration", duration_text(j.started_at, j.finished_at));
  if (!j.reason.empty()) out += row("reason", escape_html(j.reason));
  if (j.superseded_by) out += row("superseded by", job_link(*j.superseded_by));
  if (j.rerun_of) {
    out += row("re-run of", job_link(*j.rerun_of) + (j.rerun_failed ? " (its failed steps)" : ""));
  }
  if (j.log_truncated) {
    out += row("log", "truncated at the server's limit (--max-job-log): its end is dropped");
  }
  return out + "</table>\n";
}

std::string buttons(const JobRecord& j, const Viewer& viewer) {
  if (!viewer.allows(Scope::write)) return "";
  std::string id = std::to_string(j.id);
  if (!is_final_job_state(j.state)) {
    return "<form class=\"inline\" method=\"post\" action=\"/jobs/" + id + "/cancel\">" +
           csrf_field(viewer) + "<button id=\"cancel\">Cancel job</button></form>\n";
  }
  std::string out = "<form class=\"inline\" method=\"post\" action=\"/jobs/" + id + "/rerun\">" +
                    csrf_field(viewer) + "<button id=\"rerun\">Re-run</button></form>\n";
  if (has_failed_steps(j)) {
    out += "<form class=\"inline\" method=\"post\" action=\"/jobs/" + id + "/rerun\">" +
           csrf_field(viewer) + "<input type=\"hidden\" name=\"failed\" value=\"1\">"
           "<button id=\"rerun-failed\">Re-run failed steps</button></form>\n";
  }
  return out;
}

// Columns by depth (web_step_graph.h), each step a box linking to its log section; read
// without CSS it is a nested list: column, then its steps with what they need.
std::string step_graph(const JobRecord& j) {
  if (j.steps.empty()) return "";
  std::string out = "<h2>Steps</h2>\n<ol class=\"graph\">\n";
  for (const auto& column : step_columns(j.steps)) {
    out += "<li><ul>\n";
    for (size_t i : column) {
      const StepRecord& s = j.steps[i];
      std::string needs;
      for (const std::string& n : s.needs) needs += (needs.empty() ? "" : ", ") + escape_html(n);
      out += "<li><a class=\"step " + escape_html(s.state) + "\" href=\"#log-" + std::to_string(i) +
             "\">" + escape_html(s.name) + "<small>" + escape_html(s.state) +
             (s.exit_code ? " (exit " + std::to_string(*s.exit_code) + ")" : "") + " &middot; " +
             duration_text(s.started_at, s.finished_at) + "</small>" +
             (needs.empty() ? "" : "<small>needs " + needs + "</small>") +
             (s.reason.empty() ? "" : "<small>" + escape_html(s.reason) + "</small>") + "</a></li>\n";
    }
    out += "</ul></li>\n";
  }
  return out + "</ol>\n";
}

// The job's open previews as a list of links; "" when it has none (or the store failed: the
// rest of the page is still worth showing). Agents report the URLs: link_html keeps only
// http(s) ones as links.
std::string open_previews(ApiContext& ctx, const JobRecord& j) {
  auto all = ctx.store.previews(j.id);
  if (!all) return "";
  UnixMillis now = now_ms();
  std::string items;
  for (const PreviewRecord& p : *all) {
    if (!preview_open(p, j, now)) continue;
    items += "<li>" + escape_html(p.step) + " &middot; " + escape_html(p.name) + " (port " +
             std::to_string(p.port) + "): " + link_html(p.url) + " &middot; " + link_html(p.path_url) +
             (p.expires_at ? " until " + format_rfc3339(*p.expires_at) : "") + "</li>\n";
  }
  return items.empty() ? "" : "<h2>Previews</h2>\n<ul>\n" + items + "</ul>\n";
}

std::string artifacts(ApiContext& ctx, const JobRecord& j) {
  auto all = ctx.store.artifacts(j.id);
  if (!all || all->empty()) return "";
  std::string out = "<h2>Artifacts</h2>\n<ul id=\"artifacts\">\n";
  for (const ArtifactRecord& a : *all) {
    std::string href = "/jobs/" + std::to_string(j.id) + "/artifacts/" + percent_encode(a.path, true);
    out += "<li><a href=\"" + escape_html(href) + "\" download>" + escape_html(a.path) + "</a> (" +
           (a.link_target.empty() ? std::to_string(a.size) + " bytes"
                                  : "link to " + escape_html(a.link_target)) +
           ", " + escape_html(a.step) + ")</li>\n";
  }
  return out + "</ul>\n";
}

struct PageLog {
  std::map<std::string, std::string> html;  // step -> its lines as HTML
  int64_t offset = 0;                        // where the page's log ends
  bool cut = false;                          // the page's share ended before the log did
};

PageLog page_log(ApiContext& ctx, int64_t id) {
  PageLog log;
  size_t bytes = 0;
  while (true) {
    auto chunks = ctx.store.logs(id, "", log.offset, 500);
    if (!chunks || chunks->empty()) break;
    for (const LogChunk& c : *chunks) {
      std::string& html = log.html[c.step.empty() ? std::string(kJobNotes) : c.step];
      for (const LogLine& line : log_lines(c.data)) html += line_html(line);
      log.offset = c.offset + static_cast<int64_t>(c.data.size());
      bytes += c.data.size();
    }
    if (bytes >= kMaxPageLogBytes) {
      log.cut = true;
      break;
    }
  }
  return log;
}

std::string log_section(const std::string& anchor, const std::string& step, const std::string& html) {
  return "<section id=\"" + anchor + "\"><h3>" + escape_html(step) + "</h3><pre data-step=\"" +
         escape_html(step) + "\">" + html + "</pre></section>\n";
}

std::string logs(const JobRecord& j, PageLog log, bool live) {
  std::string id = std::to_string(j.id);
  std::string out = "<h2>Logs</h2>\n<p id=\"live-status\">" +
                    std::string(live ? "The job is running: <a href=\"/jobs/" + id +
                                           "\">refresh</a> to see more of its log."
                                     : "") +
                    "</p>\n";
  if (log.cut) out += "<p>The page shows the first 1 MiB of the log: the raw log has it all.</p>\n";
  out += "<div id=\"logs\" data-live=\"" + std::string(live ? "1" : "0") + "\" data-events=\"/jobs/" + id +
         "/events\" data-offset=\"" + std::to_string(log.offset) + "\">\n";
  if (auto notes = log.html.find(std::string(kJobNotes)); notes != log.html.end()) {
    out += log_section("log-job", notes->first, notes->second);
    log.html.erase(notes);
  }
  for (size_t i = 0; i < j.steps.size(); ++i) {
    auto it = log.html.find(j.steps[i].name);
    out += log_section("log-" + std::to_string(i), j.steps[i].name, it == log.html.end() ? "" : it->second);
    if (it != log.html.end()) log.html.erase(it);
  }
  for (const auto& [step, html] : log.html) out += log_section("", step, html);  // no step record yet
  return out + "</div>\n<p><a href=\"/jobs/" + id + "/log\">raw log</a></p>\n";
}

}  // namespace

void job_page(WebUi& ui, HttpRequest& req, Responder& res) {
  Viewer viewer = viewer_of(ui, req);
  if (auto refused = require_reader(ui, viewer, req)) return res.reply(std::move(*refused));
  auto id = parse_job_id(req.params["id"]);
  auto found = id ? ui.ctx.store.job(*id) : Result<std::optional<JobRecord>>(std::nullopt);
  if (!found) return res.reply(message_page(500, viewer, "error", "store error: " + found.error().message));
  if (!*found) return res.reply(message_page(404, viewer, "not found", "No such job"));
  const JobRecord& j = **found;
  bool live = !is_final_job_state(j.state);
  // The log is read after the job: a step the log names is then in j.steps, or reported later.
  PageLog log = page_log(ui.ctx, j.id);
  std::string body = "<p><a href=\"/\">&larr; jobs</a></p><h1>Job #" + std::to_string(j.id) +
                     " <span id=\"job-state\" class=\"badge " + escape_html(j.state) + "\">" +
                     escape_html(j.state) + "</span></h1>\n" + header(j) + buttons(j, viewer);
  if (auto statuses = ui.ctx.store.forge_statuses(j.id)) body += forge_statuses_html(*statuses);
  body += step_graph(j);
  // A preview link holds the token that opens it: only for a signed-in reader.
  if (viewer.allows(Scope::read)) body += open_previews(ui.ctx, j);
  body += artifacts(ui.ctx, j);
  body += logs(j, std::move(log), live);
  res.reply(html_response(200, page_html(viewer, "boxcar job #" + std::to_string(j.id), body, 0,
                                         live ? std::string(kJobScriptPath) : "")));
}

}  // namespace boxcar::server
