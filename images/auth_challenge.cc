#include "images/auth_challenge.h"

#include <cctype>

namespace boxcar::images {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

void skip_space(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

std::optional<AuthChallenge> parse_auth_challenge(std::string_view h) {
  size_t i = 0;
  skip_space(h, i);
  size_t start = i;
  while (i < h.size() && token_char(h[i])) ++i;
  std::string_view scheme = h.substr(start, i - start);
  AuthChallenge out;
  if (iequals(scheme, "basic")) {
    out.scheme = AuthChallenge::Scheme::basic;
  } else if (iequals(scheme, "bearer")) {
    out.scheme = AuthChallenge::Scheme::bearer;
  } else {
    return std::nullopt;
  }
  // auth-params: name=token or name="quoted \"string\"", comma separated.
  while (i < h.size()) {
    skip_space(h, i);
    if (i < h.size() && h[i] == ',') {
      ++i;
      continue;
    }
    size_t name_start = i;
    while (i < h.size() && token_char(h[i])) ++i;
    std::string_view name = h.substr(name_start, i - name_start);
    skip_space(h, i);
    if (name.empty() || i >= h.size() || h[i] != '=') break;  // a second challenge, or junk
    ++i;
    skip_space(h, i);
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      bool closed = false;
      while (i < h.size()) {
        char c = h[i++];
        if (c == '\\' && i < h.size()) {
          value += h[i++];
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          value += c;
        }
      }
      if (!closed) return std::nullopt;
    } else {
      while (i < h.size() && h[i] != ',' && h[i] != ' ') value += h[i++];
    }
    if (iequals(name, "realm")) out.realm = value;
    else if (iequals(name, "service")) out.service = value;
    else if (iequals(name, "scope")) out.scope = value;
  }
  if (out.scheme == AuthChallenge::Scheme::bearer && out.realm.empty()) return std::nullopt;
  return out;
}

}  // namespace boxcar::images
