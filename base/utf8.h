// UTF-8 validity (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), for the
// places that must hand bytes of unknown encoding (a step's output) to JSON, which holds text.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace boxcar {

// Length of the valid UTF-8 sequence that starts at s[i] (1 for ASCII), or 0 when s[i] does not
// start one (a stray continuation byte, a bad lead byte, or a sequence cut short).
size_t utf8_sequence(std::string_view s, size_t i);

bool is_valid_utf8(std::string_view s);

// `s` with every byte that is not part of a valid sequence replaced by U+FFFD.
std::string to_valid_utf8(std::string_view s);

}  // namespace boxcar
