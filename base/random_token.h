// Random tokens from the system's CSPRNG (OpenSSL RAND_bytes), the only place boxcar draws
// randomness for a token, and their constant-time comparison: API, agent and lease tokens, web
// sessions and CSRF tokens, preview tokens, and the unique suffixes of names.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.h"

namespace boxcar {

// `count` random bytes. An error when the CSPRNG fails: a predictable token is worse than none,
// so no caller may go on with a fallback.
Result<std::string> random_bytes(size_t count);

// `bytes` random bytes as lowercase hex (2 * bytes characters); an error as random_bytes.
Result<std::string> random_token(size_t bytes = 32);

// For the few callers with no way to report an error (a preview being published, the host
// executor's process-tree cookie): prints `error` and aborts the process.
[[noreturn]] void abort_without_randomness(const Error& error);

// Whether a and b are equal, in time that depends on their lengths only, not on where they
// first differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace boxcar
