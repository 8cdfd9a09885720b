// Random tokens from the system's CSPRNG (OpenSSL RAND_bytes) and their constant-time
// comparison: API tokens, agent tokens, web sessions and CSRF tokens.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace boxcar {

// `bytes` random bytes as lowercase hex (2 * bytes characters). Aborts if the CSPRNG fails:
// a predictable token is worse than no server.
std::string random_token(size_t bytes = 32);

// Whether a and b are equal, in time that depends on their lengths only, not on where they
// first differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace boxcar
