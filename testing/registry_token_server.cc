#include "testing/registry_token_server.h"

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdio>

#include "base/base64.h"
#include "base/random_token.h"
#include "http/http_server.h"
#include "testing/test_ca.h"

namespace boxcar::testing {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

std::string base64url(std::string_view bytes) {
  std::string s = base64_encode(bytes);
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

// An ES256 JWS: the signature is r || s, 32 bytes each (not OpenSSL's DER).
Result<std::string> sign_es256(EVP_PKEY* key, const std::string& input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string der;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  if (ok) {
    der.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len,
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    der.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) return Error("signing the token failed");
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (!sig) return Error("bad ECDSA signature");
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

}  // namespace

struct RegistryTokenServer::Impl {
  std::filesystem::path dir;
  std::string username, password;
  EVP_PKEY* key = nullptr;
  std::string cert_der_b64;
  server::Router router;
  boost::asio::io_context io;
  std::unique_ptr<server::HttpServer> server;
  std::thread thread;
  int port = 0;

  ~Impl() {
    if (server) server->stop();
    io.stop();
    if (thread.joinable()) thread.join();
    EVP_PKEY_free(key);
  }

  Result<std::string> token(const std::string& subject, const std::string& scope) {
    // scope "repository:NAME:pull,push": everything asked for is granted.
    json::array access;
    size_t first = scope.find(':');
    size_t last = scope.rfind(':');
    if (first != std::string::npos && last > first) {
      json::array actions;
      std::string list = scope.substr(last + 1);
      for (size_t start = 0; start <= list.size();) {
        size_t comma = list.find(',', start);
        if (comma == std::string::npos) comma = list.size();
        if (comma > start) actions.emplace_back(list.substr(start, comma - start));
        start = comma + 1;
      }
      access.push_back(json::object{{"type", scope.substr(0, first)},
                                    {"name", scope.substr(first + 1, last - first - 1)},
                                    {"actions", actions}});
    }
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
    json::object header{{"typ", "JWT"}, {"alg", "ES256"}, {"x5c", json::array{json::string(cert_der_b64)}}};
    json::object claims{{"iss", kIssuer}, {"sub", subject},       {"aud", kService},
                        {"exp", now + 300}, {"nbf", now - 10},    {"iat", now},
                        {"jti", random_token(8).value()},         {"access", access}};
    std::string input = base64url(json::serialize(header)) + "." + base64url(json::serialize(claims));
    auto sig = sign_es256(key, input);
    if (!sig) return sig.error();
    return input + "." + base64url(*sig);
  }
};

Result<std::unique_ptr<RegistryTokenServer>> RegistryTokenServer::start(const std::filesystem::path& dir,
                                                                        std::string username, std::string password) {
  std::unique_ptr<RegistryTokenServer> t(new RegistryTokenServer());
  t->impl_ = std::make_unique<Impl>();
  Impl& impl = *t->impl_;
  impl.dir = dir;
  impl.username = std::move(username);
  impl.password = std::move(password);
  std::filesystem::create_directories(dir);
  TestCa ca(dir);
  if (!ca.ok() || !ca.issue("token-signer", "DNS:token-signer")) return Error("test CA: " + ca.error());
  std::FILE* kf = std::fopen(ca.key("token-signer").c_str(), "r");
  if (kf) {
    impl.key = PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr);
    std::fclose(kf);
  }
  std::FILE* cf = std::fopen(ca.cert("token-signer").c_str(), "r");
  X509* cert = cf ? PEM_read_X509(cf, nullptr, nullptr, nullptr) : nullptr;
  if (cf) std::fclose(cf);
  if (!impl.key || !cert) return Error("cannot read the token signer's key or certificate");
  unsigned char* der = nullptr;
  int n = i2d_X509(cert, &der);
  impl.cert_der_b64 = base64_encode(std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(n)));
  OPENSSL_free(der);
  X509_free(cert);

  RegistryTokenServer* self = t.get();
  impl.router.add(bhttp::verb::get, "/token", [self](server::HttpRequest& req, std::shared_ptr<server::Responder> res) {
    Impl& i = *self->impl_;
    std::string subject;
    if (!i.username.empty()) {
      std::string auth = req.header("authorization");
      auto decoded = auth.rfind("Basic ", 0) == 0 ? base64_decode(auth.substr(6)) : std::nullopt;
      if (!decoded || *decoded != i.username + ":" + i.password) {
        return res->reply(server::HttpResponse::json(401, json::object{{"details", "incorrect username or password"}}));
      }
      subject = i.username;
    }
    if (req.query_or("service", "") != kService) {
      return res->reply(server::HttpResponse::json(400, json::object{{"details", "unknown service"}}));
    }
    auto token = i.token(subject, req.query_or("scope", ""));
    if (!token) return res->reply(server::HttpResponse::error(500, token.error().message));
    ++self->issued_;
    res->reply(server::HttpResponse::json(200, json::object{{"token", *token}, {"expires_in", 300}}));
  });
  impl.server = std::make_unique<server::HttpServer>(impl.io, impl.router);
  auto port = impl.server->listen("127.0.0.1", 0);
  if (!port) return port.error();
  impl.port = *port;
  impl.thread = std::thread([&impl] { impl.io.run(); });
  return t;
}

RegistryTokenServer::~RegistryTokenServer() = default;

std::string RegistryTokenServer::realm() const { return "http://127.0.0.1:" + std::to_string(impl_->port) + "/token"; }

std::filesystem::path RegistryTokenServer::ca_pem() const { return impl_->dir / "ca.pem"; }

}  // namespace boxcar::testing
