// The web UI's page frame, shared by its pages: who is looking (a session or nobody), HTML
// escaping, safe links, the page shell with its Content-Security-Policy, and the read check.
// Everything a page shows from the store is hostile (step names, log text, repository URLs,
// reasons): it goes through escape_html() or link_html(), never into markup as it is.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "server/api.h"
#include "server/web_session.h"

namespace boxcar::server {

constexpr std::string_view kSessionCookie = "boxcar_session";

// The UI's state shared by its routes: the server's context and the sessions of this process.
struct WebUi {
  explicit WebUi(ApiContext& c) : ctx(c) {}
  ApiContext& ctx;
  WebSessions sessions;
};

// Who is looking at a page: a logged-in session, or nobody (anonymous).
struct Viewer {
  std::optional<WebSessions::Session> session;
  bool allows(Scope scope) const { return session && session->token.allows(scope); }
};

Viewer viewer_of(WebUi& ui, const HttpRequest& req);

std::string escape_html(std::string_view text);
// A link to `url` showing `text` (or the URL), only for http(s) URLs: anything else (a
// javascript: or data: URL an agent reported) is shown as text, never as a link.
std::string link_html(const std::string& url, const std::string& text = "");
// The hidden form field with the viewer's CSRF token ("" without a session).
std::string csrf_field(const Viewer& viewer);

std::string when_html(const std::optional<UnixMillis>& t);
// "42s", "3m5s"; "-" unless both ends are known.
std::string duration_text(const std::optional<UnixMillis>& from, const std::optional<UnixMillis>& to);
// A state as a coloured badge (class = the state, from the fixed set of states).
std::string state_badge(const std::string& state);

// The whole document: head (title, the UI's stylesheet, `script` when the page has one; a
// reload every `refresh_seconds` when > 0), the navigation bar, then `body`.
std::string page_html(const Viewer& viewer, const std::string& title, const std::string& body,
                      int refresh_seconds = 0, const std::string& script = "");
// A page as the answer: no-store, no framing, and a CSP that runs only the UI's own script
// files (no inline script, no inline handler, no other origin).
HttpResponse html_response(unsigned status, std::string body);
HttpResponse redirect_response(const std::string& location);
HttpResponse message_page(unsigned status, const Viewer& viewer, const std::string& title,
                          const std::string& text);

// Where a login may send the browser back to: a page of this UI (the job list with its
// filters, a job page), never another site.
std::string safe_next(const std::string& next);
// nullopt when `viewer` may read pages; otherwise the answer (403, or 303 to the login page).
std::optional<HttpResponse> require_reader(WebUi& ui, const Viewer& viewer, const HttpRequest& req);

}  // namespace boxcar::server

namespace boxcar::server {

// The pages, one file each: GET / (web_job_list.cc) and GET /jobs/{id} (web_job_page.cc).
void job_list_page(WebUi& ui, HttpRequest& req, Responder& res);
void job_page(WebUi& ui, HttpRequest& req, Responder& res);

}  // namespace boxcar::server
