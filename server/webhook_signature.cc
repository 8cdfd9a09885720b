#include "server/webhook_signature.h"

#include <cctype>
#include <string>

#include "base/hmac.h"
#include "base/random_token.h"

namespace boxcar::server {

bool hmac_signature_valid(std::string_view secret, std::string_view body,
                          std::string_view signature) {
  if (signature.substr(0, 7) == "sha256=") signature.remove_prefix(7);
  std::string given(signature);
  for (char& c : given) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return constant_time_equal(hmac_sha256_hex(secret, body), given);
}

}  // namespace boxcar::server
