#include "base/glob.h"

namespace boxcar {
namespace {

// Matches one character class starting at p[0] == '['. Sets `end` past the closing ']'.
// Returns false with end == 0 when the class is unterminated (then '[' is literal).
bool match_class(std::string_view p, char c, size_t& end) {
  size_t i = 1;
  bool negate = false;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
    negate = true;
    ++i;
  }
  bool matched = false;
  bool first = true;
  for (; i < p.size(); ++i) {
    if (p[i] == ']' && !first) {
      end = i + 1;
      return matched != negate;
    }
    first = false;
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      if (c >= p[i] && c <= p[i + 2]) matched = true;
      i += 2;
    } else if (p[i] == c) {
      matched = true;
    }
  }
  end = 0;
  return false;
}

bool match(std::string_view p, std::string_view s) {
  while (!p.empty()) {
    // "**" as a whole segment: try every split point at a segment boundary.
    if (p.substr(0, 2) == "**" && (p.size() == 2 || p[2] == '/')) {
      if (p.size() == 2) return true;  // trailing "**" matches the rest
      std::string_view rest = p.substr(3);
      if (match(rest, s)) return true;
      for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '/' && match(rest, s.substr(i + 1))) return true;
      }
      return false;
    }
    char pc = p[0];
    if (pc == '*') {
      while (!p.empty() && p[0] == '*') p.remove_prefix(1);
      if (p.empty()) return s.find('/') == std::string_view::npos;
      for (size_t i = 0; i <= s.size(); ++i) {
        if (match(p, s.substr(i))) return true;
        if (i < s.size() && s[i] == '/') return false;
      }
      return false;
    }
    if (s.empty()) return false;
    if (pc == '?') {
      if (s[0] == '/') return false;
    } else if (pc == '[') {
      size_t end = 0;
      bool ok = match_class(p, s[0], end);
      if (end != 0) {
        if (!ok || s[0] == '/') return false;
        p.remove_prefix(end);
        s.remove_prefix(1);
        continue;
      }
      if (s[0] != '[') return false;
    } else if (pc == '\\' && p.size() > 1) {
      if (s[0] != p[1]) return false;
      p.remove_prefix(1);
    } else if (pc != s[0]) {
      return false;
    }
    p.remove_prefix(1);
    s.remove_prefix(1);
  }
  return s.empty();
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view name) { return match(pattern, name); }

bool glob_has_wildcards(std::string_view pattern) {
  return pattern.find_first_of("*?[\\") != std::string_view::npos;
}

}  // namespace boxcar
