// Webhook signatures: HMAC-SHA256 and SHA-256 as lowercase hex (OpenSSL), and a comparison whose
// time does not depend on where two secrets differ.
#pragma once

#include <string>
#include <string_view>

namespace boxcar::server {

std::string hmac_sha256_hex(std::string_view key, std::string_view data);
std::string sha256_hex(std::string_view data);

// Lengths are compared first (they are not secret), then the bytes with CRYPTO_memcmp.
bool constant_time_equal(std::string_view a, std::string_view b);

// True if `signature` is the hex HMAC-SHA256 of `body` under `secret`, with an optional
// "sha256=" prefix (GitHub's X-Hub-Signature-256; Gitea sends bare hex). Hex case is ignored.
bool hmac_signature_valid(std::string_view secret, std::string_view body,
                          std::string_view signature);

}  // namespace boxcar::server
