// The one check that a path someone else sent (an agent's artifact upload, the server's artifact
// list) names a place inside a directory, so joining it to that directory cannot leave it.
#pragma once

#include <cstddef>
#include <string_view>

namespace boxcar {

// The longest path accepted: Linux's PATH_MAX, so a path that passes can always be opened.
inline constexpr size_t kMaxRelativePathBytes = 4096;

// True for a relative path of at most kMaxRelativePathBytes bytes with no NUL byte and no empty,
// "." or ".." segment ("a/b.txt"; not "/a", "a//b", "a/", "./a", "a/../b").
bool safe_relative_path(std::string_view path);

}  // namespace boxcar
