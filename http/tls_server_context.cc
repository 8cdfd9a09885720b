#include "http/tls_server_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace boxcar::server {

namespace {

struct OpensslError {
  unsigned long code = 0;
  std::string reason;
};

OpensslError last_error() {
  unsigned long e = ::ERR_peek_last_error();
  ::ERR_clear_error();
  const char* reason = e ? ::ERR_reason_error_string(e) : nullptr;
  return {e, reason ? reason : "unknown error"};
}

bool key_mismatch(unsigned long e) {
  return ERR_GET_LIB(e) == ERR_LIB_X509 &&
         (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
          ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
}

// `what` is "certificate" or "key"; `subject` the setting the file came from (tls_cert, tls_key).
Status readable(const std::filesystem::path& file, const char* what, const char* subject) {
  std::FILE* f = std::fopen(file.c_str(), "r");
  if (!f) {
    int err = errno;
    return Error{std::string("cannot read the ") + what + " file " + file.string() + ": " + std::strerror(err),
                 err, err == ENOENT ? ErrorCode::not_found : ErrorCode::invalid_input, subject};
  }
  std::fclose(f);
  return {};
}

Error mismatch(const std::filesystem::path& cert_file, const std::filesystem::path& key_file,
               const std::string& reason) {
  return Error{"the key file " + key_file.string() + " is not the key of the certificate in " +
                   cert_file.string() + " (" + reason + ")",
               0, ErrorCode::invalid_input, "tls_key"};
}

// Never ask a terminal for a passphrase: a daemon has none to answer.
int no_passphrase(char*, int, int, void*) { return 0; }

}  // namespace

Result<std::shared_ptr<boost::asio::ssl::context>> load_tls_server_context(
    const std::filesystem::path& cert_file, const std::filesystem::path& key_file) {
  if (Status st = readable(cert_file, "certificate", "tls_cert"); !st.ok()) return st.error();
  if (Status st = readable(key_file, "key", "tls_key"); !st.ok()) return st.error();
  auto context = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  ::SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // No compression (CRIME), no renegotiation (a client could make the server work for free).
  ::SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
  ::SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
  ::ERR_clear_error();
  if (::SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return Error{"the certificate file " + cert_file.string() + " holds no PEM certificate (" +
                 last_error().reason + ")", 0, ErrorCode::invalid_input, "tls_cert"};
  }
  if (::SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    OpensslError why = last_error();
    if (key_mismatch(why.code)) {
      return mismatch(cert_file, key_file, why.reason);
    }
    return Error{"the key file " + key_file.string() + " holds no unencrypted PEM private key (" +
                 why.reason + ")", 0, ErrorCode::invalid_input, "tls_key"};
  }
  if (::SSL_CTX_check_private_key(ctx) != 1) {
    return mismatch(cert_file, key_file, last_error().reason);
  }
  return context;
}

}  // namespace boxcar::server
