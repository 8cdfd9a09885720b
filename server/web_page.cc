#include "server/web_page.h"

#include "base/rfc3339.h"
#include "server/web_assets.h"

namespace boxcar::server {

Viewer viewer_of(WebUi& ui, const HttpRequest& req) {
  return Viewer{ui.sessions.find(cookie_value(req.header("Cookie"), kSessionCookie))};
}

std::string escape_html(std::string_view s) {
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

std::string link_html(const std::string& url, const std::string& text) {
  const std::string& shown = text.empty() ? url : text;
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return "<code>" + escape_html(shown) + "</code>";
  }
  return "<a href=\"" + escape_html(url) + "\" rel=\"noopener noreferrer\">" + escape_html(shown) + "</a>";
}

std::string csrf_field(const Viewer& viewer) {
  if (!viewer.session) return "";
  return "<input type=\"hidden\" name=\"csrf\" value=\"" + escape_html(viewer.session->csrf) + "\">";
}

std::string when_html(const std::optional<UnixMillis>& t) { return t ? format_rfc3339(*t) : "-"; }

std::string duration_text(const std::optional<UnixMillis>& from, const std::optional<UnixMillis>& to) {
  if (!from || !to || *to < *from) return "-";
  int64_t secs = (*to - *from) / 1000;
  if (secs < 60) return std::to_string(secs) + "s";
  return std::to_string(secs / 60) + "m" + std::to_string(secs % 60) + "s";
}

std::string state_badge(const std::string& state) {
  return "<span class=\"badge " + escape_html(state) + "\">" + escape_html(state) + "</span>";
}

namespace {

std::string nav(const Viewer& viewer) {
  if (!viewer.session) return "<nav><a href=\"/login\">sign in</a></nav>\n";
  return "<nav>signed in as " + escape_html(viewer.session->token.name) +
         " <form class=\"inline\" method=\"post\" action=\"/logout\">" + csrf_field(viewer) +
         "<button>sign out</button></form></nav>\n";
}

}  // namespace

std::string page_html(const Viewer& viewer, const std::string& title, const std::string& body,
                      int refresh_seconds, const std::string& script) {
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">" +
         (refresh_seconds > 0
              ? "<meta http-equiv=\"refresh\" content=\"" + std::to_string(refresh_seconds) + "\">"
              : std::string()) +
         "<title>" + escape_html(title) + "</title><link rel=\"stylesheet\" href=\"" +
         std::string(kStylesheetPath) + "\">" +
         (script.empty() ? std::string() : "<script src=\"" + script + "\" defer></script>") +
         "</head><body>\n" + nav(viewer) + body + "</body></html>\n";
}

HttpResponse html_response(unsigned status, std::string body) {
  HttpResponse r = HttpResponse::text(status, std::move(body), "text/html; charset=utf-8");
  // Pages are per viewer: no shared cache keeps one viewer's page for another.
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // Markup that slipped through escaping still could not run: scripts only from the UI's own
  // files, no inline script or handler, no plugin, no other origin to talk to.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                         "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                         "base-uri 'none'");
  r.headers.emplace_back("Referrer-Policy", "same-origin");
  return r;
}

HttpResponse redirect_response(const std::string& location) {
  HttpResponse r = HttpResponse::text(303, "", "");
  r.headers.emplace_back("Location", location);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse message_page(unsigned status, const Viewer& viewer, const std::string& title,
                          const std::string& text) {
  return html_response(status, page_html(viewer, title, "<h1>" + escape_html(text) + "</h1>\n"));
}

std::string safe_next(const std::string& next) {
  if (next.rfind("/jobs/", 0) == 0 && parse_job_id(next.substr(6))) return next;
  return "/";
}

std::optional<HttpResponse> require_reader(WebUi& ui, const Viewer& viewer, const HttpRequest& req) {
  if (viewer.allows(Scope::read) || (!viewer.session && ui.ctx.options.public_read)) {
    return std::nullopt;
  }
  if (viewer.session) return message_page(403, viewer, "forbidden", "Your token cannot read jobs");
  return redirect_response("/login?next=" + safe_next(req.path));
}

}  // namespace boxcar::server
