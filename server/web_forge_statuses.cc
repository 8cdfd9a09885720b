#include "server/web_forge_statuses.h"

#include <boost/json.hpp>

#include "base/rfc3339.h"
#include "server/api.h"
#include "server/web_page.h"

namespace boxcar::server {

namespace json = boost::json;

std::string forge_statuses_html(const std::vector<ForgeStatusRecord>& statuses) {
  if (statuses.empty()) return "";
  std::string out =
      "<h2>Commit statuses</h2>\n<table class=\"statuses\"><thead><tr><th>state</th>"
      "<th>description</th><th>result</th><th>tries</th><th>last answer</th><th>queued</th>"
      "<th>delivered</th></tr></thead><tbody>\n";
  for (const auto& s : statuses) {
    std::string answer = s.last_http_status ? std::to_string(s.last_http_status) : "";
    if (!s.last_error.empty()) answer += (answer.empty() ? "" : " ") + s.last_error;
    out += "<tr><td>" + escape_html(s.state) + "</td><td>" + escape_html(s.description) +
           "</td><td class=\"" + escape_html(s.result) + "\">" + escape_html(s.result) +
           "</td><td>" + std::to_string(s.attempts) + "</td><td>" + escape_html(answer) +
           "</td><td>" + format_rfc3339(s.created_at) + "</td><td>" +
           (s.delivered_at ? format_rfc3339(*s.delivered_at) : "-") + "</td></tr>\n";
  }
  return out + "</tbody></table>\n";
}

json::value forge_statuses_json(const std::vector<ForgeStatusRecord>& statuses) {
  json::array out;
  for (const auto& s : statuses) {
    out.push_back(json::object{{"state", s.state},
                               {"description", s.description},
                               {"result", s.result},
                               {"attempts", s.attempts},
                               {"last_error", s.last_error},
                               {"last_http_status", s.last_http_status},
                               {"created_at", format_rfc3339(s.created_at)},
                               {"delivered_at", rfc3339_or_null(s.delivered_at)}});
  }
  return out;
}

}  // namespace boxcar::server
