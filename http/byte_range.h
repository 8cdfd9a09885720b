// Serving files over HTTP: one byte range of a Range header (RFC 9110) and a Content-Type by
// file name, shared by the artifact downloads (server/) and the sandboxes' raw files.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace boxcar::server {

struct ByteRange {
  enum Kind { whole, part, unsatisfiable } kind = whole;
  uint64_t first = 0, last = 0;  // inclusive
};

// One range of "bytes=a-b", "bytes=a-" or "bytes=-n" of a file of `size` bytes; anything else
// (several ranges, other units, garbage) is ignored and the whole file served, as RFC 9110 allows.
ByteRange parse_byte_range(const std::string& header, uint64_t size);

// A header's decimal number (Content-Length, a range bound): digits only, at most 19 of them
// (no sign, no overflow); false for anything else.
bool parse_u64(std::string_view s, uint64_t& out);

// "text/plain; charset=utf-8" for a.txt, ... "application/octet-stream" when unknown.
std::string content_type_for(const std::string& path);

}  // namespace boxcar::server
