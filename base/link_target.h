// Symlinks kept inside a set of relative paths (a step's artifacts): where a link's target
// text leads, worked out from the text alone, never by asking the filesystem.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace boxcar {

// The path that symlink `link` (a safe relative path, see safe_relative_path.h) names with
// `target`, read from the link's own directory with "." and ".." folded ("lib/libx.so" with
// "libx.so.1" -> "lib/libx.so.1", "bin/x" with "../lib/x" -> "lib/x"). Nullopt when the text is
// empty, absolute, holds a NUL, climbs above the root or names the root itself (through such a
// link "link/.." would leave it). Links inside the result are not
// expanded: resolve_in_set does that.
std::optional<std::string> lexical_link_target(std::string_view link, std::string_view target);

// Where `path` ends after expanding, component by component, every link of the set: `link_of`
// returns a path's target text when that path is a link of the set, nullopt otherwise. The
// answer is the final non-link path, or, when the chain leaves the root, loops, or is longer
// than 40 links, an error saying which.
struct LinkResolution {
  std::string path;   // set when ok
  std::string error;  // set when not
  bool ok() const { return error.empty(); }
};
LinkResolution resolve_in_set(
    std::string_view path, const std::function<std::optional<std::string>(const std::string&)>& link_of);

}  // namespace boxcar
