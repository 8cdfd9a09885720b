#include "base/hmac.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <cstdlib>

#include "base/hex.h"

namespace boxcar {

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // HMAC() fails only when OpenSSL cannot allocate; an empty MAC compared as a signature would
  // be wrong in a way nobody sees, so stop instead.
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len) == nullptr) {
    std::fprintf(stderr, "boxcar: OpenSSL HMAC failed (out of memory?)\n");
    std::abort();
  }
  return hex_encode(mac, len);
}

}  // namespace boxcar
