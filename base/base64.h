// Standard base64 (RFC 4648, with padding), used to mask secrets in their encoded form too.
#pragma once

#include <string>
#include <string_view>

namespace boxcar {

std::string base64_encode(std::string_view bytes);

}  // namespace boxcar
