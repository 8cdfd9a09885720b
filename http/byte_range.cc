#include "http/byte_range.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string_view>
#include <utility>

namespace boxcar::server {

bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

std::string content_type_for(const std::string& path) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".txt", "text/plain; charset=utf-8"},  {".log", "text/plain; charset=utf-8"},
      {".xml", "application/xml"},            {".json", "application/json"},
      {".html", "text/html; charset=utf-8"},  {".js", "text/javascript"},
      {".css", "text/css"},                   {".png", "image/png"},
      {".jpg", "image/jpeg"},                 {".svg", "image/svg+xml"},
      {".tar", "application/x-tar"},          {".gz", "application/gzip"},
      {".zip", "application/zip"},
  };
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [e, type] : kTypes) {
    if (ext == e) return type;
  }
  return "application/octet-stream";
}

ByteRange parse_byte_range(const std::string& header, uint64_t size) {
  ByteRange r;
  constexpr std::string_view kPrefix = "bytes=";
  if (header.compare(0, kPrefix.size(), kPrefix) != 0) return r;
  std::string_view spec = std::string_view(header).substr(kPrefix.size());
  if (spec.find(',') != std::string_view::npos) return r;
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return r;
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  uint64_t x = 0, y = 0;
  if (a.empty()) {  // suffix: the last n bytes
    if (!parse_u64(b, y)) return r;
    if (y == 0 || size == 0) return {ByteRange::unsatisfiable};
    return {ByteRange::part, size - std::min(y, size), size - 1};
  }
  if (!parse_u64(a, x)) return r;
  if (b.empty()) {
    y = size == 0 ? 0 : size - 1;
  } else if (!parse_u64(b, y) || y < x) {
    return r;
  }
  if (x >= size) return {ByteRange::unsatisfiable};
  return {ByteRange::part, x, std::min(y, size - 1)};
}

}  // namespace boxcar::server
