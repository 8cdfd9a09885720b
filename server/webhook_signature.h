// Webhook signatures: the HMAC (SHA-256) headers of GitHub and Gitea, checked in constant time.
#pragma once

#include <string_view>

namespace boxcar::server {

// True if `signature` is the hex HMAC (SHA-256) of `body` under `secret`, with an optional
// "sha256=" prefix (GitHub's X-Hub-Signature-256; Gitea sends bare hex). Hex case is ignored.
bool hmac_signature_valid(std::string_view secret, std::string_view body,
                          std::string_view signature);

}  // namespace boxcar::server
