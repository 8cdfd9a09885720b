// Authentication of the user API (DESIGN.md section 6): bearer API tokens and their scopes,
// --public-read, JSON-only state-changing requests, and the Host allow-list that defeats DNS
// rebinding. The agent protocol and webhooks authenticate themselves; the web UI turns a token
// into a session (web_session.h).
#pragma once

#include <optional>
#include <string>

#include "server/api.h"
#include "server/api_tokens.h"
#include "http/http_server.h"

namespace boxcar::server {

// What an anonymous caller gets on a route.
enum class Anonymous {
  refused,      // always 401
  public_read,  // let through when the server runs with --public-read (jobs, logs, artifacts)
};

// The API token named by `req`'s "Authorization: Bearer ..." header; nullptr when the header is
// missing, malformed or names no token. Cookies never count: a page on another origin can make
// a browser send the UI's cookie, never this header.
const ApiToken* api_caller(const ApiContext& ctx, const HttpRequest& req);

// nullopt when `req` may use a route that needs `scope`; otherwise the answer to send: 401 with
// "WWW-Authenticate: Bearer" (no token, or an unknown one), 403 (a token without the scope).
// Routes added later (agents, secrets) call this from their handler or through
// requires_scope().
std::optional<HttpResponse> authorize(const ApiContext& ctx, const HttpRequest& req, Scope scope,
                                      Anonymous anonymous = Anonymous::refused);

// RouteOptions whose admit runs authorize() and, for a method that changes state, insists on a
// JSON body (415 for forms and text/plain: what a page on another origin can send without
// asking), all before the body is read.
RouteOptions requires_scope(const ApiContext& ctx, Scope scope,
                            Anonymous anonymous = Anonymous::refused);

// The Host allow-list (every route but /healthz, through Router::guard): nullopt when the Host
// header is absent (not a browser), an IP address, localhost, the listen address's name, or
// --public-url's host; otherwise 421. A DNS-rebinding page reaches this server under the
// attacker's name, which its browser sends as Host.
std::optional<HttpResponse> check_host(const ServerConfig& options, const HttpRequest& req);

// Whether the server is reached over https (it serves TLS, or its --public-url says so):
// cookies get Secure.
bool served_over_https(const ServerConfig& options);

}  // namespace boxcar::server
