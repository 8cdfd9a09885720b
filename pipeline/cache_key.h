// Cache key templates of [[step.cache]]: `npm-${hash:package-lock.json}-${branch}`. ${matrix.x}
// is interpolated when the matrix expands (pipeline/matrix.h); what is left is split here into
// text, ${branch} and ${hash:GLOB[,GLOB...]}, which the agent fills in before the step starts.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace boxcar::pipeline {

// Bounds of [[step.cache]] (docs/pipeline.md "Limits"): a key names a directory of the agent's
// store and a line of the log, so it is short and printable.
inline constexpr size_t kMaxCachesPerStep = 8;
inline constexpr size_t kMaxCacheKeyBytes = 256;      // the template and the rendered key
inline constexpr size_t kMaxCacheRestoreKeys = 8;
inline constexpr size_t kMaxCachePaths = 32;
inline constexpr size_t kMaxCacheHashGlobs = 16;

struct CacheKeyPart {
  enum class Kind { text, branch, hash };
  Kind kind = Kind::text;
  std::string text;                // Kind::text
  std::vector<std::string> globs;  // Kind::hash: workspace-relative globs, in written order
};

// `text` with every character a key may not hold (space, control, non-ASCII) as '_': a branch
// name put into a key.
std::string cache_key_safe(std::string_view text);

// Splits a key (or restore key) whose ${matrix.x} are already interpolated. Errors say what is
// wrong and how to write it: an unknown ${...}, an unclosed one, a glob that leaves the
// workspace, a character that cannot be part of a key (keys are printable ASCII without spaces).
Result<std::vector<CacheKeyPart>> parse_cache_key(std::string_view key);

// Fills in ${branch} and every ${hash:...} (`hash_of(globs)` gives its hex digest), checking the
// result against kMaxCacheKeyBytes.
template <typename HashOf>
Result<std::string> render_cache_key(const std::vector<CacheKeyPart>& parts,
                                     std::string_view branch, HashOf&& hash_of) {
  std::string key;
  for (const CacheKeyPart& part : parts) {
    if (part.kind == CacheKeyPart::Kind::text) {
      key += part.text;
    } else if (part.kind == CacheKeyPart::Kind::branch) {
      key += cache_key_safe(branch);
    } else {
      Result<std::string> digest = hash_of(part.globs);
      if (!digest) return digest;
      key += *digest;
    }
  }
  if (key.size() > kMaxCacheKeyBytes) {
    return Error{"cache key is " + std::to_string(key.size()) + " bytes once filled in, over " +
                 std::to_string(kMaxCacheKeyBytes) + " (shorten its text; a ${hash:...} is 64)"};
  }
  return key;
}

}  // namespace boxcar::pipeline
