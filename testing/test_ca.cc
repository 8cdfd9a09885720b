#include "testing/test_ca.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace boxcar::testing {

TestCa::TestCa(std::filesystem::path dir) : dir_(std::move(dir)) {
  openssl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
          "-subj /CN=boxcar-test-ca -keyout '" + (dir_ / "ca.key").string() + "' -out '" +
          ca_pem().string() + "'");
}

bool TestCa::issue(const std::string& name, const std::string& sans) {
  if (!ok()) return false;
  std::filesystem::path ext = dir_ / (name + ".ext");
  std::ofstream(ext) << "subjectAltName=" << sans
                     << "\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n";
  std::string csr = (dir_ / (name + ".csr")).string();
  return openssl("req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" + name +
                 " -keyout '" + key(name).string() + "' -out '" + csr + "'") &&
         openssl("x509 -req -days 2 -in '" + csr + "' -CA '" + ca_pem().string() + "' -CAkey '" +
                 (dir_ / "ca.key").string() + "' -CAcreateserial -extfile '" + ext.string() +
                 "' -out '" + cert(name).string() + "'");
}

bool TestCa::openssl(const std::string& args) {
  std::string log = (dir_ / "openssl.log").string();
  int rc = std::system(("openssl " + args + " >>'" + log + "' 2>&1").c_str());
  if (rc == 0) return true;
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  error_ = "openssl " + args + " failed (status " + std::to_string(rc) + "): " + text.str();
  return false;
}

}  // namespace boxcar::testing
