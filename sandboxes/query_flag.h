// A yes/no query parameter of the sandbox API (?recursive=1, ?mkdirs=true): one reading for
// every route, so each answers a bad value the same way.
#pragma once

#include <string>

#include "base/result.h"
#include "http/http_server.h"

namespace boxcar::sandboxes {

// "1", "true" -> true; "0", "false" -> false; absent or empty -> `fallback`; anything else is an
// Error naming `key`.
inline Result<bool> query_flag(const server::HttpRequest& req, const std::string& key, bool fallback = false) {
  auto it = req.query.find(key);
  if (it == req.query.end() || it->second.empty()) return fallback;
  if (it->second == "1" || it->second == "true") return true;
  if (it->second == "0" || it->second == "false") return false;
  return Error{"query parameter " + key + "=" + it->second + ": expected 1 or 0"};
}

}  // namespace boxcar::sandboxes
