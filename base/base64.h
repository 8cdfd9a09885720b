// Standard base64 (RFC 4648, with padding), used to mask secrets in their encoded form too, and
// to carry log bytes that are not UTF-8 inside JSON.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace boxcar {

std::string base64_encode(std::string_view bytes);
// nullopt unless `text` is canonical padded base64 (length a multiple of 4, no whitespace).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace boxcar
