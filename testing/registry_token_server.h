// RegistryTokenServer (tests only): the token service of a docker-registry run with
// `auth: token`, so a real registry drives the Bearer challenge (realm, service, scope). It
// answers GET /token?service=&scope= with a JWT (ES256, x5c: a certificate of a throwaway CA the
// registry trusts) granting the actions asked for, after checking basic credentials when it has
// some. Used by RegistryServer; tests see it only through RegistryServer::tokens_issued().
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "base/result.h"

namespace boxcar::testing {

class RegistryTokenServer {
 public:
  // Makes the CA and the signing certificate in `dir`; serves on 127.0.0.1, a free port.
  static Result<std::unique_ptr<RegistryTokenServer>> start(const std::filesystem::path& dir, std::string username,
                                                            std::string password);
  ~RegistryTokenServer();

  std::string realm() const;  // "http://127.0.0.1:PORT/token"
  std::filesystem::path ca_pem() const;
  static constexpr const char* kService = "boxcar-test-registry";
  static constexpr const char* kIssuer = "boxcar-test-token-issuer";
  size_t issued() const { return issued_; }

 private:
  struct Impl;
  RegistryTokenServer() = default;
  std::unique_ptr<Impl> impl_;
  std::atomic<size_t> issued_{0};
};

}  // namespace boxcar::testing
