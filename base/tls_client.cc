#include "base/tls_client.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>

namespace boxcar {

namespace {

std::string openssl_reason() {
  unsigned long e = ::ERR_get_error();
  ::ERR_clear_error();
  const char* reason = e ? ::ERR_reason_error_string(e) : nullptr;
  return reason ? reason : "unknown error";
}

boost::system::error_code last_ssl_error() {
  return {static_cast<int>(::ERR_get_error()), boost::asio::error::get_ssl_category()};
}

// Boost's error_category has a non-virtual destructor by design: categories are static
// singletons, never deleted through a base pointer.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class VerifyCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "boxcar.tls"; }
  std::string message(int code) const override {
    if (code == kNotTls) {
      return "the server did not answer in TLS (if it serves plain http, use an http:// URL)";
    }
    std::string why = ::X509_verify_cert_error_string(code);
    if (code == X509_V_ERR_HOSTNAME_MISMATCH || code == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      return "the server's certificate is not for this host (" + why +
             "): connect with a name the certificate carries";
    }
    return "the server's certificate is not trusted (" + why +
           "): pass the CA that signed it with --ca-file (or BOXCAR_CA_FILE)";
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& tls_verify_category() {
  static const VerifyCategory category;
  return category;
}

TlsClient::TlsClient(bool pinned)
    : context_(boost::asio::ssl::context::tls_client), pinned_(pinned) {}

Result<std::shared_ptr<TlsClient>> TlsClient::create(const TlsClientOptions& options) {
  std::shared_ptr<TlsClient> client(new TlsClient(options.pinned));
  SSL_CTX* ctx = client->context_.native_handle();
  ::SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  ::SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  client->context_.set_verify_mode(boost::asio::ssl::verify_peer);
  if (options.ca_file.empty()) {
    if (options.pinned) return Error{"a pinned TLS client needs the certificate to pin"};
    if (::SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return Error{"cannot load the system's trusted CAs: " + openssl_reason() +
                   " (pass --ca-file PEM)"};
    }
    return client;
  }
  const std::string file = options.ca_file.string();
  if (std::FILE* f = std::fopen(file.c_str(), "r")) {
    std::fclose(f);
  } else {
    return Error{"cannot read the CA file " + file + ": " + std::strerror(errno), errno};
  }
  if (!options.pinned) {
    if (::SSL_CTX_load_verify_locations(ctx, file.c_str(), nullptr) != 1) {
      return Error{"the CA file " + file + " holds no PEM certificate (" + openssl_reason() + ")"};
    }
    return client;
  }
  // Pinned: only the first certificate (a chain file's leaf), trusted as it is, although it is
  // usually no CA; the intermediates after it must not vouch for anything else.
  std::FILE* f = std::fopen(file.c_str(), "r");
  if (!f) return Error{"cannot read the certificate " + file + ": " + std::strerror(errno), errno};
  X509* leaf = ::PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!leaf) return Error{"the file " + file + " holds no PEM certificate (" + openssl_reason() + ")"};
  int added = ::X509_STORE_add_cert(::SSL_CTX_get_cert_store(ctx), leaf);
  ::X509_free(leaf);
  if (added != 1) return Error{"cannot trust the certificate in " + file + ": " + openssl_reason()};
  ::X509_VERIFY_PARAM_set_flags(::SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
  return client;
}

boost::system::error_code TlsClient::prepare(SSL* ssl, const std::string& host) const {
  boost::system::error_code not_ip;
  boost::asio::ip::make_address(host, not_ip);
  ::ERR_clear_error();
  // SNI carries host names only (RFC 6066).
  if (not_ip && ::SSL_set_tlsext_host_name(ssl, const_cast<char*>(host.c_str())) != 1) {
    return last_ssl_error();
  }
  if (pinned_) return {};
  X509_VERIFY_PARAM* param = ::SSL_get0_param(ssl);
  ::X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  int ok = not_ip ? ::X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size())
                  : ::X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  if (ok != 1) return last_ssl_error();
  return {};
}

boost::system::error_code TlsClient::explain(SSL* ssl, const boost::system::error_code& ec) {
  long verify = ::SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) return {static_cast<int>(verify), tls_verify_category()};
  if (ec.category() == boost::asio::error::get_ssl_category()) {
    int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG) {
      return {kNotTls, tls_verify_category()};
    }
  }
  return ec;
}

}  // namespace boxcar
