// Glob matching for slash-separated names: branch filters ("release/*") and artifact paths
// ("reports/**/*.xml").
#pragma once

#include <string_view>

namespace boxcar {

// `*` matches any run of characters except '/'; `?` one character except '/';
// `**` as a whole path segment matches zero or more segments ("a/**/b" matches "a/b" and
// "a/x/y/b"; a trailing "/**" matches everything below); `[abc]`, `[a-z]` and `[!a]` are
// character classes. Everything else matches itself; `\` escapes the next character.
bool glob_match(std::string_view pattern, std::string_view name);

// True when the pattern has any wildcard character, i.e. is not a literal path.
bool glob_has_wildcards(std::string_view pattern);

}  // namespace boxcar
