// RFC 3339 timestamps in UTC with milliseconds ("2026-01-02T03:00:00.123Z"), the one format of
// every time boxcar writes: the API's *_at fields, `boxcar run --json` and the web UI.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace boxcar {

// `unix_ms` milliseconds since 1970-01-01T00:00:00Z; times before 1970 round down, so the
// milliseconds are never negative.
std::string format_rfc3339(int64_t unix_ms);
std::string format_rfc3339(std::chrono::system_clock::time_point t);

}  // namespace boxcar
