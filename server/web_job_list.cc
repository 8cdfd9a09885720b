// The web UI's job list (GET /): filters by repository, branch and state as GET parameters
// (a plain form), newest first, pages of ?limit= (default kPageSize) with an "older" link by id.
#include <charconv>

#include "base/rfc3339.h"
#include "base/run_state.h"
#include "base/url.h"
#include "server/web_page.h"

namespace boxcar::server {

namespace {

constexpr int kPageSize = 50, kMaxPageSize = 200;

bool known_job_state(const std::string& state) {
  for (const char* s : kJobStates) {
    if (state == s) return true;
  }
  return false;
}

std::string branch_of(const std::string& ref) {
  constexpr std::string_view kHeads = "refs/heads/";
  return ref.rfind(kHeads, 0) == 0 ? ref.substr(kHeads.size()) : ref;
}

std::string filter_form(const JobQuery& q) {
  std::string states = "<option value=\"\">any state</option>";
  for (const char* s : kJobStates) {
    states += "<option" + std::string(q.state == s ? " selected" : "") + ">" + s + "</option>";
  }
  return "<form class=\"filters\" method=\"get\" action=\"/\">"
         "<label>repository <input name=\"repo\" value=\"" + escape_html(q.repo) + "\" size=\"40\"></label> "
         "<label>branch <input name=\"ref\" value=\"" + escape_html(q.ref) + "\" size=\"16\"></label> "
         "<label>state <select name=\"state\">" + states + "</select></label> "
         "<button>filter</button> <a href=\"/\">all jobs</a></form>\n";
}

// "/?repo=...&ref=...&state=...&before=ID": this list's next page.
std::string older_url(const JobQuery& q, int64_t before) {
  std::string url = "/?";
  auto add = [&](const char* key, const std::string& value) {
    if (!value.empty()) url += std::string(key) + "=" + percent_encode(value, false) + "&";
  };
  add("repo", q.repo);
  add("ref", q.ref);
  add("state", q.state);
  if (q.limit != kPageSize) url += "limit=" + std::to_string(q.limit) + "&";
  return url + "before=" + std::to_string(before);
}

std::string row(const JobRecord& j) {
  std::string id = std::to_string(j.id);
  std::string commit = j.commit.substr(0, 12);
  std::string commit_cell = commit.empty() ? "-" : link_html(j.forge.commit_url(j.commit), commit);
  return "<tr><td><a href=\"/jobs/" + id + "\">#" + id + "</a></td><td>" + state_badge(j.state) +
         "</td><td>" + escape_html(redact_url(j.repo)) + "</td><td>" + escape_html(branch_of(j.ref)) +
         "</td><td><code>" + commit_cell + "</code></td><td>" + escape_html(j.pipeline_name) +
         "</td><td>" + escape_html(j.event) + "</td><td>" + format_rfc3339(j.created_at) +
         "</td><td>" + duration_text(j.started_at, j.finished_at) + "</td></tr>\n";
}

}  // namespace

void job_list_page(WebUi& ui, HttpRequest& req, Responder& res) {
  Viewer viewer = viewer_of(ui, req);
  if (auto refused = require_reader(ui, viewer, req)) return res.reply(std::move(*refused));
  JobQuery q;
  q.repo = req.query_or("repo", "");
  q.ref = req.query_or("ref", "");
  q.state = req.query_or("state", "");
  q.limit = kPageSize;
  std::string problem;
  if (!q.state.empty() && !known_job_state(q.state)) {
    problem = "Unknown state \"" + q.state + "\": pick one from the list.";
    q.state.clear();
  }
  if (std::string limit = req.query_or("limit", ""); !limit.empty()) {
    auto [end, ec] = std::from_chars(limit.data(), limit.data() + limit.size(), q.limit);
    if (ec != std::errc() || end != limit.data() + limit.size() || q.limit < 1 || q.limit > kMaxPageSize) {
      problem = "\"limit\" is the page size, from 1 to " + std::to_string(kMaxPageSize) + ".";
      q.limit = kPageSize;
    }
  }
  if (std::string before = req.query_or("before", ""); !before.empty()) {
    q.before_id = parse_job_id(before);
    if (!q.before_id) problem = "\"before\" is a job id (the older link sets it).";
  }
  if (!problem.empty()) {
    return res.reply(html_response(400, page_html(viewer, "boxcar jobs",
                                                  "<h1>boxcar</h1>\n" + filter_form(q) +
                                                      "<p class=\"failed\">" + escape_html(problem) + "</p>\n")));
  }
  auto jobs = ui.ctx.store.jobs(q);
  if (!jobs) return res.reply(message_page(500, viewer, "error", "store error: " + jobs.error().message));
  bool filtered = !q.repo.empty() || !q.ref.empty() || !q.state.empty() || q.before_id;
  std::string body = "<h1>boxcar</h1>\n" + filter_form(q);
  if (jobs->empty()) {
    body += filtered ? "<p>No jobs match.</p>\n"
                     : "<p>No jobs yet. Point a forge webhook at <code>/hooks/github</code>, "
                       "<code>/hooks/gitea</code> or <code>/hooks/gitlab</code>, or run "
                       "<code>boxcar submit</code>.</p>\n";
  } else {
    body += "<table id=\"jobs\"><thead><tr><th>job</th><th>state</th><th>repository</th>"
            "<th>branch</th><th>commit</th><th>pipeline</th><th>event</th><th>created</th>"
            "<th>duration</th></tr></thead><tbody>\n";
    for (const JobRecord& j : *jobs) body += row(j);
    body += "</tbody></table>\n";
    if (jobs->size() == static_cast<size_t>(q.limit)) {
      body += "<p><a id=\"older\" href=\"" + escape_html(older_url(q, jobs->back().id)) +
              "\">older jobs &rarr;</a></p>\n";
    }
  }
  // The first page follows new jobs by reloading itself; an older page stays put.
  res.reply(html_response(200, page_html(viewer, "boxcar jobs", body, q.before_id ? 0 : 5)));
}

}  // namespace boxcar::server
