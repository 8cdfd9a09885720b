// The server's TLS set-up (`serve --tls-cert --tls-key`): the certificate chain and its key,
// checked to match, TLS 1.2 or newer.
#pragma once

#include <filesystem>
#include <memory>

#include <boost/asio/ssl/context.hpp>

#include "base/result.h"

namespace boxcar::server {

// Loads a PEM certificate chain (the server's certificate first) and its unencrypted PEM key.
// Errors name the file and say what is wrong with it: unreadable, not PEM, an encrypted key, a
// key that does not belong to the certificate; their subject is "tls_cert" or "tls_key".
Result<std::shared_ptr<boost::asio::ssl::context>> load_tls_server_context(
    const std::filesystem::path& cert_file, const std::filesystem::path& key_file);

}  // namespace boxcar::server
