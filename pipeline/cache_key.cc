#include "pipeline/cache_key.h"

#include "base/safe_relative_path.h"

namespace boxcar::pipeline {
namespace {

bool key_char(char c) { return c > ' ' && c < 127; }

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

Result<std::vector<std::string>> hash_globs(std::string_view list) {
  std::vector<std::string> globs;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string glob(list.substr(start, comma - start));
    // A glob is matched against workspace-relative paths, so it must look like one.
    if (!safe_relative_path(glob)) {
      return Error{"${hash:...} glob " + quoted(glob) +
                       " must be relative to the workspace like \"package-lock.json\" or "
                       "\"**/go.sum\" (not empty, absolute, or with \"..\" or \".\" parts)",
                   0, ErrorCode::invalid_input};
    }
    globs.push_back(std::move(glob));
    start = comma + 1;
  }
  if (globs.size() > kMaxCacheHashGlobs) {
    return Error{"${hash:...} has " + std::to_string(globs.size()) + " globs, at most " +
                     std::to_string(kMaxCacheHashGlobs),
                 0, ErrorCode::invalid_input};
  }
  return globs;
}

}  // namespace

std::string cache_key_safe(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (!key_char(c)) c = '_';
  }
  return out;
}

Result<std::vector<CacheKeyPart>> parse_cache_key(std::string_view key) {
  std::vector<CacheKeyPart> parts;
  auto add_text = [&parts](std::string_view text) {
    if (text.empty()) return;
    if (parts.empty() || parts.back().kind != CacheKeyPart::Kind::text) parts.emplace_back();
    parts.back().text += text;
  };
  if (key.size() > kMaxCacheKeyBytes) {
    return Error{"key is " + std::to_string(key.size()) + " bytes, at most " +
                     std::to_string(kMaxCacheKeyBytes),
                 0, ErrorCode::invalid_input};
  }
  size_t i = 0;
  while (i < key.size()) {
    size_t open = key.find("${", i);
    std::string_view text = key.substr(i, open == std::string_view::npos ? key.size() - i : open - i);
    for (char c : text) {
      if (!key_char(c)) {
        return Error{"a key holds printable ASCII without spaces; " + quoted(key) +
                         " has a character that is not (use - or _ instead)",
                     0, ErrorCode::invalid_input};
      }
    }
    add_text(text);
    if (open == std::string_view::npos) break;
    size_t close = key.find('}', open);
    if (close == std::string_view::npos) {
      return Error{"unclosed \"${\" in " + quoted(key) + " (write ${branch} or ${hash:GLOB})", 0,
                   ErrorCode::invalid_input};
    }
    std::string_view inner = key.substr(open + 2, close - open - 2);
    if (inner == "branch") {
      parts.push_back({CacheKeyPart::Kind::branch, {}, {}});
    } else if (inner.starts_with("hash:")) {
      auto globs = hash_globs(inner.substr(5));
      if (!globs) return globs.error();
      parts.push_back({CacheKeyPart::Kind::hash, {}, std::move(*globs)});
    } else {
      return Error{"unknown " + quoted("${" + std::string(inner) + "}") + " in key " + quoted(key) +
                       " (use ${matrix.NAME}, ${branch} or ${hash:GLOB[,GLOB...]})",
                   0, ErrorCode::invalid_input};
    }
    i = close + 1;
  }
  if (parts.empty()) return Error{"key must not be empty", 0, ErrorCode::invalid_input};
  return parts;
}

}  // namespace boxcar::pipeline
