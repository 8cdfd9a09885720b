// Byte sizes as users write them: "512MiB", "2GiB", "100MB", "4096".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace boxcar {

// Accepts an integer or decimal followed by B, KB, MB, GB, TB (powers of 1000),
// KiB, MiB, GiB, TiB (powers of 1024), or K, M, G (powers of 1024, as docker does).
// Returns nullopt for anything else, negative numbers and overflow included.
std::optional<uint64_t> parse_size(std::string_view text);

// Short human form with binary units: "512.0 MiB", "17 B".
std::string format_size(uint64_t bytes);

}  // namespace boxcar
