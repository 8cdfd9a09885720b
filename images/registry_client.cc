// The registry client: one HttpClient per request on a private io_context, so each call blocks
// only its own thread and several layers download at once without sharing a loop.
#include "images/registry_client.h"

#include <unistd.h>

#include <openssl/x509.h>

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "base/base64.h"
#include "base/sha256.h"
#include "base/url.h"
#include "http/http_client.h"
#include "images/auth_challenge.h"
#include "images/docker_auth.h"
#include "images/manifest.h"
#include "images/registry_text.h"

namespace boxcar::images {

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr int kMaxRedirects = 5;
constexpr uint64_t kMaxTokenBytes = 1 << 20;

struct Exchange {
  boost::system::error_code ec;
  HttpReply reply;
};

// One request on its own loop: GET `path` of `base`; a 200 body goes to `on_data` when given
// (never held), else into the reply up to `max_body`.
// The loop runs in slices so a stop (a cancelled or overdue pull) is seen while the registry
// is silent, not only when its next bytes arrive; a stopped exchange ends operation_aborted.
Exchange exchange(const ServerUrl& base, const std::shared_ptr<TlsClient>& tls, const std::string& path,
                  const HttpHeaders& headers, Millis timeout, uint64_t max_body, const BodyHandler& on_data,
                  const PullStop& stop) {
  boost::asio::io_context io;
  HttpClientOptions options;
  options.max_body = max_body;
  HttpClient client(io, base, "", base.tls ? tls : nullptr, options);
  Exchange out;
  bool finished = false;
  auto done = [&out, &finished](const boost::system::error_code& ec, HttpReply r) {
    out.ec = ec;
    out.reply = std::move(r);
    finished = true;
  };
  auto watched = [&](std::string_view piece) { return !stop.stopped() && on_data(piece); };
  uint64_t id = on_data ? client.stream(path, timeout, watched, done, headers)
                        : client.send("GET", path, "", "", timeout, done, headers);
  while (!io.stopped() && !finished) {
    io.run_for(std::chrono::milliseconds(100));
    if (!finished && stop.stopped()) {
      client.cancel(id);
      out.ec = boost::asio::error::operation_aborted;
      break;
    }
  }
  return out;
}

// "https://host[:port]/path?query" (or "/path?query" relative to `from`) -> where to send it.
Result<std::pair<ServerUrl, std::string>> locate(const ServerUrl& from, const std::string& location) {
  if (!location.empty() && location.front() == '/' && (location.size() < 2 || location[1] != '/')) {
    return std::make_pair(from, location);
  }
  auto u = boost::urls::parse_absolute_uri(location);
  if (!u || (u->scheme() != "https" && u->scheme() != "http") || u->host().empty()) {
    return Error("the registry pointed at \"" + registry_text(location) + "\", which is not an http(s) URL", 0,
                 ErrorCode::unavailable);
  }
  ServerUrl to;
  to.tls = u->scheme() == "https";
  to.host = u->host_name().empty() ? std::string(u->encoded_host()) : std::string(u->host_name());
  if (u->host_type() == boost::urls::host_type::ipv6) to.host = std::string(u->host_address());
  to.port = u->has_port() ? std::string(u->port()) : (to.tls ? "443" : "80");
  to.authority = std::string(u->encoded_host_and_port());
  to.text = std::string(u->scheme()) + "://" + to.authority;
  std::string target = u->encoded_path().empty() ? "/" : std::string(u->encoded_path());
  if (u->has_query()) target += "?" + std::string(u->encoded_query());
  return std::make_pair(std::move(to), std::move(target));
}

// "CODE message" of each error in a registry's JSON error body, or the start of the body.
std::string registry_answer(const HttpReply& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  std::string out;
  if (!ec && v.is_object()) {
    if (const json::value* errors = v.as_object().if_contains("errors"); errors && errors->is_array()) {
      for (const auto& e : errors->as_array()) {
        if (!e.is_object()) continue;
        const auto& o = e.as_object();
        std::string code = o.contains("code") && o.at("code").is_string() ? std::string(o.at("code").as_string()) : "";
        std::string message = o.contains("message") && o.at("message").is_string() ? std::string(o.at("message").as_string()) : "";
        out += (out.empty() ? "" : "; ") + code + (message.empty() ? "" : " " + message);
      }
    }
  }
  if (!out.empty()) return registry_text(out);
  out = "HTTP " + std::to_string(r.status);
  if (!r.body.empty()) out += ": " + registry_text(r.body);
  return out;
}

// Sleeps `d` unless `stop` says so first; false when it did.
bool wait(Millis d, const PullStop& stop) {
  auto until = Clock::now() + d;
  while (Clock::now() < until) {
    if (stop.stopped()) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(100)));
  }
  return !stop.stopped();
}

bool is_redirect(unsigned status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// A failure sending again cannot fix: the server's certificate, or a server that is not TLS.
bool permanent(const boost::system::error_code& ec) {
  return ec.category() == tls_verify_category() || ec == boost::asio::error::no_protocol_option;
}

struct Attempt {
  HttpReply reply;
  bool retry = false;  // a network failure, 429 or 5xx: worth another try
  std::string why;     // for the retry, or the final error
};

class HttpRegistryClient final : public RegistryClient {
 public:
  HttpRegistryClient(RegistryOptions options, DockerAuth auth, std::shared_ptr<TlsClient> tls)
      : options_(std::move(options)), auth_(std::move(auth)), tls_(std::move(tls)) {}

  Result<Manifest> resolve(const Reference& ref, const PullStop& stop) override {
    std::string image = ref.canonical();
    auto top = fetch_manifest(ref, ref.manifest_ref(), stop);
    if (!top) return top.error();
    auto& [body, type, digest] = *top;
    if (!ref.digest.empty() && digest != ref.digest) {
      return Error("image \"" + image + "\": the registry served a manifest whose digest is " + digest,
                   0, ErrorCode::invalid_input);
    }
    auto kind = manifest_kind(body, type, image);
    if (!kind) return kind.error();
    if (*kind == ManifestKind::image) return parse_manifest(body, type, digest, image);
    auto entry = pick_platform(body, Platform{options_.os, options_.architecture, options_.variant}, image);
    if (!entry) return entry.error();
    auto platform = fetch_manifest(ref, entry->digest, stop);
    if (!platform) return platform.error();
    auto& [pbody, ptype, pdigest] = *platform;
    if (pdigest != entry->digest) {
      return Error("image \"" + image + "\": manifest " + entry->digest + " does not match its digest (the registry served " +
                       pdigest + ")", 0, ErrorCode::invalid_input);
    }
    return parse_manifest(pbody, ptype, pdigest, image);
  }

  Result<ImageConfig> fetch_config(const Reference& ref, const Manifest& manifest, const PullStop& stop) override {
    std::string body;
    auto status = fetch(ref, manifest.config, [&](std::string_view piece) { body.append(piece); return true; },
                        [&] { body.clear(); }, nullptr, stop);
    if (!status) return status.error();
    return parse_image_config(body, ref.canonical());
  }

  Status fetch_blob(const Reference& ref, const Descriptor& blob, int out,
                    const std::function<void(uint64_t, uint64_t)>& progress, const PullStop& stop) override {
    std::string write_error;
    auto sink = [&](std::string_view piece) {
      while (!piece.empty()) {
        ssize_t n = ::write(out, piece.data(), piece.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          write_error = std::strerror(n < 0 ? errno : EIO);
          return false;
        }
        piece.remove_prefix(static_cast<size_t>(n));
      }
      return true;
    };
    auto restart = [&] {
      if (::ftruncate(out, 0) != 0 || ::lseek(out, 0, SEEK_SET) != 0) write_error = std::strerror(errno);
    };
    auto status = fetch(ref, blob, sink, restart, progress, stop);
    if (!write_error.empty()) {
      return Error("blob " + blob.digest + " of image \"" + ref.canonical() + "\": cannot write it: " + write_error);
    }
    return status;
  }

 private:
  struct Token {
    std::string value;
    Clock::time_point expires;
  };
  struct Fetched {
    std::string body;
    std::string content_type;
    std::string digest;
  };

  std::string image_of(const Reference& ref) const { return "image \"" + ref.canonical() + "\""; }

  ServerUrl base_of(const Reference& ref) const {
    ServerUrl base;
    std::string host = ref.api_host();
    base.tls = !insecure(ref.registry);
    base.authority = host;
    size_t colon = host.rfind(':');
    bool has_port = colon != std::string::npos && host.find(']', colon) == std::string::npos;
    base.host = has_port ? host.substr(0, colon) : host;
    if (!base.host.empty() && base.host.front() == '[') base.host = base.host.substr(1, base.host.size() - 2);
    base.port = has_port ? host.substr(colon + 1) : (base.tls ? "443" : "80");
    base.text = (base.tls ? "https://" : "http://") + host;
    return base;
  }

  bool insecure(const std::string& registry) const {
    for (const auto& r : options_.insecure) {
      if (r == registry || (registry.find(':') == std::string::npos && r == registry + ":80")) return true;
    }
    return false;
  }

  Result<Fetched> fetch_manifest(const Reference& ref, const std::string& manifest_ref, const PullStop& stop) {
    std::string path = "/v2/" + ref.repository + "/manifests/" + manifest_ref;
    auto attempt =
        request(ref, path, {{"Accept", kManifestAccept}}, options_.max_manifest_bytes, nullptr, nullptr, stop);
    if (!attempt) return attempt.error();
    const HttpReply& r = *attempt;
    if (r.status == 404) {
      return Error(image_of(ref) + " not found in registry " + ref.registry + ": " + registry_answer(r), 0,
                   ErrorCode::not_found);
    }
    if (r.status != 200) {
      return Error(image_of(ref) + ": registry " + ref.registry + " answered the manifest request with " +
                       registry_answer(r), 0, ErrorCode::unavailable);
    }
    return Fetched{r.body, r.header("content-type"), "sha256:" + sha256_hex(r.body)};
  }

  // Streams blob `d` to `sink`, verifying its size and digest; `restart` before each new try.
  Status fetch(const Reference& ref, const Descriptor& d, const std::function<bool(std::string_view)>& sink,
               const std::function<void()>& restart, const std::function<void(uint64_t, uint64_t)>& progress,
               const PullStop& stop) {
    std::string path = "/v2/" + ref.repository + "/blobs/" + d.digest;
    std::optional<Sha256> hash;
    uint64_t got = 0;
    bool too_long = false;
    bool sink_failed = false;
    auto begin = [&] {
      hash.emplace();
      got = 0;
      too_long = sink_failed = false;
    };
    begin();
    auto on_data = [&](std::string_view piece) {
      if (got + piece.size() > d.size) {
        too_long = true;
        return false;
      }
      got += piece.size();
      hash->update(piece);
      if (!sink(piece)) {
        sink_failed = true;
        return false;
      }
      if (progress) progress(got, d.size);
      return true;
    };
    auto again = [&] {
      if (restart) restart();
      begin();
    };
    auto attempt = request(ref, path, {}, 0, on_data, again, stop);
    std::string what = "blob " + d.digest + " of " + image_of(ref);
    if (!attempt) return attempt.error();
    if (sink_failed) return Error(what + ": could not be written");
    const HttpReply& r = *attempt;
    if (r.status == 404) {
      return Error(what + " not found in registry " + ref.registry + ": " + registry_answer(r), 0, ErrorCode::not_found);
    }
    if (r.status != 200) {
      return Error(what + ": registry " + ref.registry + " answered " + registry_answer(r), 0, ErrorCode::unavailable);
    }
    if (too_long || got != d.size) {
      return Error(what + ": the registry sent " + (too_long ? "more than" : std::to_string(got) + " of") + " the " +
                       std::to_string(d.size) + " bytes the manifest says", 0, ErrorCode::invalid_input);
    }
    std::string actual = "sha256:" + hash->hex();
    if (actual != d.digest) {
      return Error(what + ": the content the registry sent does not match its digest (it hashes to " + actual +
                       "); the registry's copy is corrupt", 0, ErrorCode::invalid_input);
    }
    return {};
  }

  // GET `path` of the reference's registry with auth, redirects and retries. The final
  // answer, whatever its status, or an Error when none came.
  Result<HttpReply> request(const Reference& ref, const std::string& path, const HttpHeaders& headers,
                            uint64_t max_body, const BodyHandler& on_data, const std::function<void()>& restart,
                            const PullStop& stop) {
    Millis backoff = options_.backoff;
    std::string why;
    int attempts = std::max(1, options_.attempts);
    for (int i = 0; i < attempts; ++i) {
      if (i > 0) {
        if (options_.on_retry) options_.on_retry(why);
        if (!wait(backoff, stop)) return stop_error(stop, ref.canonical());
        backoff *= 2;
        if (restart) restart();
      }
      auto a = once(ref, path, headers, max_body, on_data, stop);
      if (stop.stopped()) return stop_error(stop, ref.canonical());
      if (!a) return a.error();
      if (!a->retry) return std::move(a->reply);
      why = a->why;
    }
    return Error(image_of(ref) + ": registry " + ref.registry + " " + why + " (tried " + std::to_string(attempts) +
                     " times)", 0, ErrorCode::unavailable);
  }

  // One try: the request, the auth challenge answered once, redirects followed.
  Result<Attempt> once(const Reference& ref, const std::string& path, const HttpHeaders& headers, uint64_t max_body,
                       const BodyHandler& on_data, const PullStop& stop) {
    ServerUrl base = base_of(ref);
    std::string scope = "repository:" + ref.repository + ":pull";
    auto creds = auth_.lookup(ref.registry);
    HttpHeaders with_auth = headers;
    auto authorization = known_authorization(ref, scope, creds, stop);
    if (!authorization) return authorization.error();
    if (!authorization->empty()) with_auth.emplace_back("Authorization", *authorization);
    auto ex = exchange(base, tls_, path, with_auth, options_.timeout, max_body, on_data, stop);
    if (!ex.ec && ex.reply.status == 401) {
      auto challenge = parse_auth_challenge(ex.reply.header("www-authenticate"));
      if (!challenge) {
        return Error(image_of(ref) + ": registry " + ref.registry + " asks for credentials in a way boxcar does not "
                         "support (WWW-Authenticate: " + registry_text(ex.reply.header("www-authenticate")) + ")",
                     0, ErrorCode::usage);
      }
      {
        std::lock_guard lock(mu_);
        challenges_[ref.registry] = *challenge;
      }
      bool had_auth = !authorization->empty();
      auto fresh = answer_challenge(ref, *challenge, scope, creds, stop);
      if (!fresh) return fresh.error();
      if (had_auth && *fresh == *authorization) return refused(ref, creds);
      with_auth = headers;
      with_auth.emplace_back("Authorization", *fresh);
      ex = exchange(base, tls_, path, with_auth, options_.timeout, max_body, on_data, stop);
      if (!ex.ec && ex.reply.status == 401) return refused(ref, creds);
    }
    for (int hops = 0; !ex.ec && is_redirect(ex.reply.status); ++hops) {
      if (hops == kMaxRedirects) return Error(image_of(ref) + ": more than 5 redirects", 0, ErrorCode::unavailable);
      auto to = locate(base, ex.reply.header("location"));
      if (!to) return to.error();
      if (base.tls && !to->first.tls) {
        return Error(image_of(ref) + ": registry " + ref.registry + " redirected to plain http (" +
                         registry_text(to->first.text) + "), which boxcar refuses",
                     0, ErrorCode::unavailable);
      }
      // Blob storage elsewhere gets no registry credential: it has its own (a signed URL).
      HttpHeaders next = to->first.authority == base.authority ? with_auth : headers;
      base = to->first;
      with_auth = next;
      ex = exchange(base, tls_, to->second, with_auth, options_.timeout, max_body, on_data, stop);
    }
    Attempt a;
    if (ex.ec) {
      std::string where = registry_text(base.host + ":" + base.port);  // a redirect's host, maybe
      if (ex.ec.category() == tls_verify_category() && ex.ec.value() == kNotTls) {
        return Error(image_of(ref) + ": registry " + ref.registry + " (" + where + ") answers plain http, not https; "
                     "if it is meant to, add --insecure-registry " + ref.registry, 0, ErrorCode::usage);
      }
      if (ex.ec == boost::beast::http::error::body_limit) {
        return Error(image_of(ref) + ": the registry's answer is larger than " + std::to_string(max_body) + " bytes", 0,
                     ErrorCode::limit_exceeded);
      }
      if (ex.ec.category() == tls_verify_category()) {
        return Error(image_of(ref) + ": registry " + ref.registry + " (" + where + ") presents a certificate that is not "
                     "trusted (" + X509_verify_cert_error_string(ex.ec.value()) + "): add the CA that signed it to the "
                     "system's CA store (update-ca-certificates)", 0, ErrorCode::unavailable);
      }
      std::string message = "is unreachable at " + where + ": " + ex.ec.message();
      if (permanent(ex.ec)) return Error(image_of(ref) + ": registry " + ref.registry + " " + message, 0, ErrorCode::unavailable);
      a.retry = true;
      a.why = message;
      return a;
    }
    if (ex.reply.status == 429 || ex.reply.status >= 500) {
      a.retry = true;
      a.why = "answered " + registry_answer(ex.reply);
      return a;
    }
    if (ex.reply.status == 403) {
      return Error(image_of(ref) + ": registry " + ref.registry + " denies access: " + registry_answer(ex.reply), 0,
                   ErrorCode::usage);
    }
    a.reply = std::move(ex.reply);
    return a;
  }

  Error refused(const Reference& ref, const RegistryCredentials& creds) const {
    if (!creds.basic) return needs_credentials(ref, creds);
    return Error(image_of(ref) + ": registry " + ref.registry + " refused the credentials of user \"" +
                     creds.basic->username + "\" (check the registry auth file)", 0, ErrorCode::usage);
  }

  Error needs_credentials(const Reference& ref, const RegistryCredentials& creds) const {
    std::string how = creds.unsupported.empty()
                          ? "give a Docker config.json with an \"auths\" entry for " + ref.registry + " (--registry-auth FILE)"
                          : creds.unsupported;
    return Error(image_of(ref) + ": registry " + ref.registry + " requires credentials (or the image does not exist "
                 "there): " + how, 0, ErrorCode::usage);
  }

  static std::string basic_header(const BasicCredentials& c) {
    return "Basic " + base64_encode(c.username + ":" + c.password);
  }

  // What to send before any challenge: a cached token, or basic credentials for a registry
  // that asked for them before; a token fetched at once when the registry's realm is known.
  Result<std::string> known_authorization(const Reference& ref, const std::string& scope, const RegistryCredentials& creds,
                                          const PullStop& stop) {
    std::optional<AuthChallenge> challenge;
    {
      std::lock_guard lock(mu_);
      auto t = tokens_.find(ref.registry + " " + scope);
      if (t != tokens_.end() && Clock::now() < t->second.expires) return "Bearer " + t->second.value;
      auto c = challenges_.find(ref.registry);
      if (c != challenges_.end()) challenge = c->second;
    }
    if (!challenge) return std::string();
    if (challenge->scheme == AuthChallenge::Scheme::basic) return creds.basic ? basic_header(*creds.basic) : std::string();
    return answer_challenge(ref, *challenge, scope, creds, stop);
  }

  Result<std::string> answer_challenge(const Reference& ref, const AuthChallenge& c, const std::string& scope,
                                       const RegistryCredentials& creds, const PullStop& stop) {
    if (c.scheme == AuthChallenge::Scheme::basic) {
      if (!creds.basic) return needs_credentials(ref, creds);
      return basic_header(*creds.basic);
    }
    auto token = fetch_token(ref, c, scope, creds, stop);
    if (!token) return token.error();
    return "Bearer " + *token;
  }

  // The token endpoint: GET realm?service=...&scope=... with basic credentials when there are.
  Result<std::string> fetch_token(const Reference& ref, const AuthChallenge& c, const std::string& scope,
                                  const RegistryCredentials& creds, const PullStop& stop) {
    auto where = locate(base_of(ref), c.realm);
    if (!where) return Error(image_of(ref) + ": registry " + ref.registry + "'s token realm: " + where.error().message, 0, ErrorCode::unavailable);
    auto& [base, target] = *where;
    if (!base.tls && !insecure(ref.registry)) {
      return Error(image_of(ref) + ": registry " + ref.registry + " sends for tokens to plain http (" + registry_text(c.realm) +
                   "), which boxcar refuses", 0, ErrorCode::unavailable);
    }
    target += std::string(target.find('?') == std::string::npos ? "?" : "&") + "scope=" + percent_encode(scope, false);
    if (!c.service.empty()) target += "&service=" + percent_encode(c.service, false);
    HttpHeaders headers;
    if (creds.basic) headers.emplace_back("Authorization", basic_header(*creds.basic));
    Exchange ex;
    Millis backoff = options_.backoff;
    for (int i = 0; i < std::max(1, options_.attempts); ++i) {
      if (i > 0) {
        if (!wait(backoff, stop)) return stop_error(stop, ref.canonical());
        backoff *= 2;
      }
      ex = exchange(base, tls_, target, headers, options_.timeout, kMaxTokenBytes, nullptr, stop);
      if (stop.stopped()) return stop_error(stop, ref.canonical());
      if (!(ex.ec && !permanent(ex.ec)) && ex.reply.status != 429 && ex.reply.status < 500) break;
    }
    if (ex.ec) {
      return Error(image_of(ref) + ": the token service of registry " + ref.registry + " (" + registry_text(base.text) +
                   ") is unreachable: " + ex.ec.message(), 0, ErrorCode::unavailable);
    }
    if (ex.reply.status == 401 || ex.reply.status == 403) return refused(ref, creds);
    if (ex.reply.status != 200) {
      return Error(image_of(ref) + ": the token service of registry " + ref.registry + " answered " +
                   registry_answer(ex.reply), 0, ErrorCode::unavailable);
    }
    boost::system::error_code ec;
    json::value v = json::parse(ex.reply.body, ec);
    std::string token;
    int64_t expires_in = 60;  // the distribution spec's default
    if (!ec && v.is_object()) {
      const auto& o = v.as_object();
      for (const char* key : {"token", "access_token"}) {
        if (const json::value* t = o.if_contains(key); t && t->is_string() && !t->as_string().empty()) {
          token = std::string(t->as_string());
          break;
        }
      }
      if (const json::value* e = o.if_contains("expires_in"); e && e->is_int64() && e->as_int64() > 0) {
        expires_in = e->as_int64();
      }
    }
    if (token.empty()) {
      return Error(image_of(ref) + ": the token service of registry " + ref.registry + " answered without a token", 0,
                   ErrorCode::unavailable);
    }
    std::lock_guard lock(mu_);
    // A little early, so a token is never sent in its last seconds.
    tokens_[ref.registry + " " + scope] =
        Token{token, Clock::now() + std::chrono::seconds(std::max<int64_t>(expires_in - 5, 1))};
    return token;
  }

  RegistryOptions options_;
  DockerAuth auth_;
  std::shared_ptr<TlsClient> tls_;
  std::mutex mu_;
  std::map<std::string, Token> tokens_;              // "registry scope" -> token
  std::map<std::string, AuthChallenge> challenges_;  // registry -> its last challenge
};

}  // namespace

Result<std::unique_ptr<RegistryClient>> RegistryClient::make(RegistryOptions options) {
  auto auth = DockerAuth::load(options.auth_file);
  if (!auth) return auth.error();
  auto tls = TlsClient::create(TlsClientOptions{options.ca_file});
  if (!tls) return tls.error();
  for (const auto& r : options.insecure) {
    if (r.empty() || r.find('/') != std::string::npos || r.find("://") != std::string::npos) {
      return Error("insecure registry \"" + r + "\" is not a HOST:PORT", 0, ErrorCode::usage, "insecure_registry");
    }
  }
  return std::unique_ptr<RegistryClient>(
      std::make_unique<HttpRegistryClient>(std::move(options), std::move(*auth), std::move(*tls)));
}

}  // namespace boxcar::images
