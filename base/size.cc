#include "base/size.h"

#include <cstdio>

namespace boxcar {

std::optional<uint64_t> parse_size(std::string_view text) {
  size_t i = 0;
  long double value = 0;
  bool digits = false;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    value = value * 10 + (text[i] - '0');
    digits = true;
    ++i;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    long double scale = 0.1L;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      value += (text[i] - '0') * scale;
      scale /= 10;
      digits = true;
      ++i;
    }
  }
  if (!digits) return std::nullopt;
  std::string_view unit = text.substr(i);
  long double mult;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KB") mult = 1e3L;
  else if (unit == "MB") mult = 1e6L;
  else if (unit == "GB") mult = 1e9L;
  else if (unit == "TB") mult = 1e12L;
  else if (unit == "KiB" || unit == "K" || unit == "k") mult = 1024.0L;
  else if (unit == "MiB" || unit == "M") mult = 1024.0L * 1024;
  else if (unit == "GiB" || unit == "G") mult = 1024.0L * 1024 * 1024;
  else if (unit == "TiB" || unit == "T") mult = 1024.0L * 1024 * 1024 * 1024;
  else return std::nullopt;
  long double bytes = value * mult;
  if (bytes > 1.8e19L) return std::nullopt;
  return static_cast<uint64_t>(bytes + 0.5L);
}

std::string format_size(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
    return buf;
  }
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace boxcar
