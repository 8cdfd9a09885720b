#include "base/random_token.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "base/hex.h"

namespace boxcar {

Result<std::string> random_bytes(size_t count) {
  std::string out(count, '\0');
  if (count > INT_MAX) return Error{"cannot draw " + std::to_string(count) + " random bytes at once"};
  if (count > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(count)) != 1) {
    char why[256];
    ERR_error_string_n(ERR_get_error(), why, sizeof why);
    return Error{std::string("the system's random number generator failed (OpenSSL RAND_bytes: ") +
                 why + "): no token can be made safely"};
  }
  return out;
}

Result<std::string> random_token(size_t bytes) {
  auto raw = random_bytes(bytes);
  if (!raw) return raw.error();
  return hex_encode(*raw);
}

void abort_without_randomness(const Error& error) {
  std::fprintf(stderr, "boxcar: %s\n", error.message.c_str());
  std::abort();
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace boxcar
