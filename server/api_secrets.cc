// Secrets kept by the server (DESIGN.md section 6): PUT /api/v1/secrets/{name}[?repo=URL] takes
// the raw value, DELETE removes it, GET /api/v1/secrets[?repo=URL] lists names and dates (never
// values), all with an admin token; and the agent route that hands a job's declared secrets to
// the agent holding its lease. Values are sealed by secret_box.h before the store sees them.
#include <boost/json.hpp>

#include <regex>
#include <set>

#include "base/rfc3339.h"
#include "base/utf8.h"
#include "protocol/agent_paths.h"
#include "protocol/agent_protocol.h"
#include "server/agent_identity.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/secret_box.h"

namespace boxcar::server {

namespace json = boost::json;

namespace {

bool is_secret_name(const std::string& name) {
  static const std::regex kName("[A-Z_][A-Z0-9_]{0,127}");
  return std::regex_match(name, kName);
}

// "" (server-wide) or the ?repo= of the request, as jobs store their repository.
std::string scope_of(const HttpRequest& req) { return req.query_or("repo", ""); }

std::string scope_words(const std::string& scope) {
  return scope.empty() ? "server-wide" : "for " + scope;
}

// The name of the {name} capture, or the 400 that refuses it; also 503 when the server keeps
// no secrets (it was built without a key: only tests do that).
std::optional<HttpResponse> refuse_name(const ApiContext& ctx, const std::string& name) {
  if (ctx.options.secrets_key.empty()) {
    return HttpResponse::error(503, "this server was started without a secrets key");
  }
  if (!is_secret_name(name)) {
    return HttpResponse::error(
        400, "\"" + name.substr(0, 130) + "\" is not a secret name: 1-128 of A-Z, 0-9 and _, "
             "not starting with a digit (like NPM_TOKEN), as a step's `secrets = [...]` names it");
  }
  return std::nullopt;
}

void put(ApiContext& ctx, HttpRequest& req, Responder& res) {
  const std::string& name = req.params["name"];
  if (auto refused = refuse_name(ctx, name)) return res.reply(std::move(*refused));
  const std::string& value = req.body();
  // A step gets the value as an environment variable: no NUL byte fits there.
  if (value.find('\0') != std::string::npos || !is_valid_utf8(value)) {
    return res.reply(HttpResponse::error(
        400, "secret " + name + ": the value must be UTF-8 text without NUL bytes (it becomes an "
             "environment variable); encode binary values, e.g. with base64"));
  }
  std::string scope = scope_of(req);
  SecretBox box(ctx.options.secrets_key);
  auto sealed = box.seal(scope, name, value);
  if (!sealed) return res.reply(HttpResponse::error(500, sealed.error().message));
  UnixMillis now = now_ms();
  auto stored = ctx.store.put_secret(
      SecretRecord{scope, name, std::move(sealed->nonce), std::move(sealed->ciphertext), now, now},
      ctx.options.max_secrets_per_scope);
  if (!stored) return res.reply(store_error(stored.error()));
  if (*stored == SecretPut::scope_full) {
    return res.reply(HttpResponse::error(
        409, "there are already " + std::to_string(ctx.options.max_secrets_per_scope) +
                 " secrets " + scope_words(scope) + " (serve --max-secrets-per-scope): remove one "
                 "first (`boxcar secret rm NAME" + (scope.empty() ? "" : " --repo " + scope) + "`)"));
  }
  bool created = *stored == SecretPut::created;
  res.reply(HttpResponse::json(created ? 201 : 200,
                               json::object{{"name", name},
                                            {"repo", scope.empty() ? json::value(nullptr) : json::value(scope)},
                                            {"created", created}}));
}

void remove(ApiContext& ctx, HttpRequest& req, Responder& res) {
  const std::string& name = req.params["name"];
  if (auto refused = refuse_name(ctx, name)) return res.reply(std::move(*refused));
  std::string scope = scope_of(req);
  auto removed = ctx.store.delete_secret(scope, name);
  if (!removed) return res.reply(store_error(removed.error()));
  if (!*removed) {
    return res.reply(HttpResponse::error(404, "no secret " + name + " " + scope_words(scope) +
                                                  " (`boxcar secret ls` lists them)"));
  }
  res.reply(HttpResponse::json(200, json::object{{"removed", name}}));
}

void list(ApiContext& ctx, HttpRequest& req, Responder& res) {
  std::string scope = scope_of(req);
  auto all = ctx.store.secrets(scope);
  if (!all) return res.reply(store_error(all.error()));
  json::array out;
  for (const auto& s : *all) {
    out.push_back(json::object{{"name", s.name},
                               {"created_at", format_rfc3339(s.created_at)},
                               {"updated_at", format_rfc3339(s.updated_at)}});
  }
  res.reply(HttpResponse::json(
      200, json::object{{"repo", scope.empty() ? json::value(nullptr) : json::value(scope)},
                        {"secrets", std::move(out)}}));
}

// The values of the names asked, for the agent holding job `id`'s lease: the repository's own
// over the server-wide one; nothing for a fork's job.
void for_agent(ApiContext& ctx, int64_t id, const LeaseHolder& holder, HttpRequest& req,
               Responder& res) {
  auto body = protocol::from_json_text<protocol::SecretsRequest>(req.body());
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  auto held = ctx.store.holds_lease(id, holder);
  if (!held) return res.reply(store_error(held.error()));
  if (!*held) return res.reply(lease_lost(id, holder));
  auto job = ctx.store.job(id);
  if (!job) return res.reply(store_error(job.error()));
  if (!*job) return res.reply(lease_lost(id, holder));
  protocol::SecretsResponse out;
  out.fork = (*job)->fork;
  std::set<std::string> asked(body->names.begin(), body->names.end());
  if (out.fork || asked.empty() || ctx.options.secrets_key.empty()) {
    return res.reply(HttpResponse::json(200, protocol::to_json(out)));
  }
  SecretBox box(ctx.options.secrets_key);
  // Server-wide first, so the repository's own replaces it.
  for (const std::string& scope : {std::string(), (*job)->repo}) {
    auto kept = ctx.store.secrets(scope);
    if (!kept) return res.reply(store_error(kept.error()));
    for (const auto& s : *kept) {
      if (!asked.count(s.name)) continue;
      auto value = box.open(scope, s.name, SealedSecret{s.nonce, s.ciphertext});
      if (value) {
        out.secrets[s.name] = std::move(*value);
      } else {
        // Never the server-wide value in its place: the step fails naming it instead.
        out.secrets.erase(s.name);
        out.errors.push_back(value.error().message);
      }
    }
  }
  res.reply(HttpResponse::json(200, protocol::to_json(out)));
}

}  // namespace

void add_secret_routes(Router& router, ApiContext& ctx) {
  // A raw body, not JSON: requires_scope() insists on JSON against cross-site forms, but no form
  // sends PUT, and the bearer token (never a cookie) is what authorizes it.
  RouteOptions put_options;
  put_options.body_limit = kMaxSecretValueBytes;
  put_options.admit = [&ctx](const HttpRequest& head) {
    return authorize(ctx, head, Scope::admin);
  };
  router.add(http::verb::put, "/api/v1/secrets/{name}",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { put(ctx, req, *res); },
             std::move(put_options));
  router.add(http::verb::delete_, "/api/v1/secrets/{name}",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { remove(ctx, req, *res); },
             requires_scope(ctx, Scope::admin));
  router.add(http::verb::get, "/api/v1/secrets",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { list(ctx, req, *res); },
             requires_scope(ctx, Scope::admin));
  router.add(http::verb::post, protocol::agent_job_route(protocol::kSecrets),
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) {
               auto holder = lease_holder_of_request(ctx, req);
               if (auto* refusal = std::get_if<HttpResponse>(&holder)) return res->reply(std::move(*refusal));
               auto id = parse_job_id(req.params["id"]);
               if (!id) return res->reply(HttpResponse::error(404, "no such job: " + req.params["id"]));
               for_agent(ctx, *id, std::get<LeaseHolder>(holder), req, *res);
             });
}

}  // namespace boxcar::server
