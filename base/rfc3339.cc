#include "base/rfc3339.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace boxcar {

std::string format_rfc3339(int64_t unix_ms) {
  int64_t secs = unix_ms / 1000;
  int64_t millis = unix_ms % 1000;
  if (millis < 0) {  // floor, not truncate
    millis += 1000;
    --secs;
  }
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", fmt::gmtime(static_cast<std::time_t>(secs)), millis);
}

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
  return format_rfc3339(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

}  // namespace boxcar
