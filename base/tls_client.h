// TlsClient: how boxcar's clients and agents check a server's certificate: the CAs they trust
// (--ca-file, else the system's store), TLS 1.2 or newer, and for each connection the host
// name or address the certificate must carry (also sent as SNI).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include "base/result.h"

namespace boxcar {

struct TlsClientOptions {
  std::filesystem::path ca_file;  // PEM certificates to trust; empty: the system's store
  // Trust exactly the certificates in ca_file, whatever names they carry: for the in-process
  // agents of `serve`, which connect over loopback to the server holding that certificate's key.
  bool pinned = false;
};

class TlsClient {
 public:
  // Errors name the CA file and say what is wrong with it.
  static Result<std::shared_ptr<TlsClient>> create(const TlsClientOptions& options);

  boost::asio::ssl::context& context() { return context_; }

  // Sets up a new connection's SSL object for `host` (a name or an address, as in the URL):
  // SNI for names, and the name or address the certificate must be issued for.
  boost::system::error_code prepare(SSL* ssl, const std::string& host) const;

  // After a failed handshake: an error whose message says why the server's certificate was
  // refused and what to do, or `ec` itself when the certificate was not the problem.
  static boost::system::error_code explain(SSL* ssl, const boost::system::error_code& ec);

 private:
  explicit TlsClient(bool pinned);

  boost::asio::ssl::context context_;
  bool pinned_;
};

// The category of TlsClient::explain's errors: values are OpenSSL's X509_V_ERR_* codes, or
// kNotTls when the server's answer was not TLS at all.
const boost::system::error_category& tls_verify_category();
inline constexpr int kNotTls = -1;

}  // namespace boxcar
