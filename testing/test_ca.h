// TestCa (tests only): a throwaway certificate authority made with the `openssl` command, and
// server certificates it signs for chosen names, for TLS tests on loopback.
#pragma once

#include <filesystem>
#include <string>

namespace boxcar::testing {

class TestCa {
 public:
  // Makes ca.pem and ca.key in `dir` (which must exist). ok() is false, and error() says why,
  // when openssl failed.
  explicit TestCa(std::filesystem::path dir);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  std::filesystem::path ca_pem() const { return dir_ / "ca.pem"; }

  // Writes <name>.pem and <name>.key: a server certificate (P-256 key, serverAuth) with the
  // subject alternative names `sans`, like "DNS:localhost,IP:127.0.0.1". False (error() says
  // why) when openssl failed.
  bool issue(const std::string& name, const std::string& sans);
  std::filesystem::path cert(const std::string& name) const { return dir_ / (name + ".pem"); }
  std::filesystem::path key(const std::string& name) const { return dir_ / (name + ".key"); }

 private:
  bool openssl(const std::string& args);

  std::filesystem::path dir_;
  std::string error_;
};

}  // namespace boxcar::testing
