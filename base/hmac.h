// HMAC-SHA256 (OpenSSL), the only place boxcar computes one: webhook signatures.
#pragma once

#include <string>
#include <string_view>

namespace boxcar {

// The HMAC-SHA256 of `data` under `key`, as lowercase hex.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

}  // namespace boxcar
