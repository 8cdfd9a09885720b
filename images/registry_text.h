// registry_text: a string a registry (or an image) chose, made fit to quote in an Error that
// `boxcar image pull` prints and run/agent write to logs: control characters (ESC included, so
// no SGR either) shown escaped, C1 controls, bidi overrides and bytes that are not UTF-8 escaped
// as base/terminal_escape.h does, and the length capped. Every registry-provided text that goes
// into an Error of images/ passes through it: error codes and messages, WWW-Authenticate,
// Location, media types, platform names.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace boxcar::images {

inline constexpr size_t kRegistryTextMax = 200;

std::string registry_text(std::string_view text, size_t max_bytes = kRegistryTextMax);

}  // namespace boxcar::images
