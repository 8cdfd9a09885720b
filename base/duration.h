// Durations as users write them in pipeline files and flags: "90s", "10m", "1h30m", "250ms".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace boxcar {

using Millis = std::chrono::milliseconds;

// Parses a sequence of <integer><unit> with units h, m, s, ms (e.g. "1h30m", "90s").
// Returns nullopt for anything else: empty text, a bare number, unknown unit, overflow.
std::optional<Millis> parse_duration(std::string_view text);

// Short human form: "850ms", "4.2s", "3m05s", "1h02m".
std::string format_duration(Millis d);

}  // namespace boxcar
