// Lowercase hex of bytes: digests, MACs and random tokens all print through here.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace boxcar {

// Two lowercase hex digits per byte.
std::string hex_encode(const void* data, size_t size);
inline std::string hex_encode(std::string_view bytes) { return hex_encode(bytes.data(), bytes.size()); }

// True for a non-empty string of lowercase hex digits only.
bool is_lower_hex(std::string_view text);

}  // namespace boxcar
