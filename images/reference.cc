#include "images/reference.h"

#include <algorithm>

#include "base/sha256.h"

namespace boxcar::images {

namespace {

constexpr size_t kMaxNameLength = 255;  // distribution/reference's NameTotalLengthMax

Error invalid(std::string_view text, const std::string& why) {
  return Error("image \"" + std::string(text) + "\": " + why, 0, ErrorCode::invalid_input);
}

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: [a-z0-9]+ joined by '.', '_', '__' or any run of '-'.
bool valid_component(std::string_view c) {
  if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (lower_alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !lower_alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" ||
              std::all_of(sep.begin(), sep.end(), [](char s) { return s == '-'; });
    if (!ok) return false;
    i = j;
  }
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(t.front())) return false;
  return std::all_of(t.begin(), t.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

// host[:port]: letters, digits, '-', '.', an optional numeric port; or a bracketed IPv6.
bool valid_domain(std::string_view d) {
  if (d.empty()) return false;
  std::string_view host = d;
  std::string_view port;
  if (d.front() == '[') {
    size_t close = d.find(']');
    if (close == std::string_view::npos) return false;
    host = d.substr(0, close + 1);
    std::string_view rest = d.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
  } else {
    size_t colon = d.rfind(':');
    if (colon != std::string_view::npos) {
      host = d.substr(0, colon);
      port = d.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (host.empty() || host.front() == '-' || host.front() == '.' || host.back() == '.') return false;
    for (char c : host) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.';
      if (!ok) return false;
    }
  }
  if (port.size() > 5) return false;
  return std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string Reference::canonical() const {
  std::string out = registry + "/" + repository;
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

std::string Reference::api_host() const {
  return registry == "docker.io" ? "registry-1.docker.io" : registry;
}

Result<Reference> parse_reference(std::string_view text) {
  if (text.empty()) return invalid(text, "the reference is empty");
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return invalid(text, "a reference holds no spaces or control characters");
    }
  }
  Reference ref;
  std::string_view rest = text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    std::string_view digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    if (digest.substr(0, 7) != "sha256:" || !is_sha256_hex(digest.substr(7))) {
      return invalid(text, "the digest after '@' must be sha256: and 64 lowercase hex digits");
    }
    ref.digest = std::string(digest);
  }
  // The tag follows the last ':' that comes after the last '/' (a registry port comes before).
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (!valid_tag(tag)) {
      return invalid(text, "tag \"" + std::string(tag) +
                               "\" is not valid: 1 to 128 of A-Z a-z 0-9 _ . -, not starting with . or -");
    }
    ref.tag = std::string(tag);
  }
  if (rest.empty()) return invalid(text, "no repository name");
  // Docker's rule: the first component is a registry when it has a '.' or ':', is
  // "localhost", or has an uppercase letter (no repository can).
  std::string_view first = rest.substr(0, rest.find('/'));
  bool has_domain = first.size() < rest.size() &&
                    (first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
                     std::any_of(first.begin(), first.end(), [](char c) { return c >= 'A' && c <= 'Z'; }));
  std::string_view path = rest;
  if (has_domain) {
    if (!valid_domain(first)) return invalid(text, "registry \"" + std::string(first) + "\" is not a host[:port]");
    ref.registry = std::string(first);
    path = rest.substr(first.size() + 1);
  } else {
    ref.registry = "docker.io";
  }
  if (ref.registry == "index.docker.io") ref.registry = "docker.io";
  if (path.empty()) return invalid(text, "no repository name after the registry");
  for (size_t start = 0; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view component = path.substr(start, end - start);
    if (!valid_component(component)) {
      if (std::any_of(component.begin(), component.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
        return invalid(text, "repository names are lowercase");
      }
      return invalid(text, "repository component \"" + std::string(component) +
                               "\" is not valid: lowercase letters and digits, joined by . _ __ or -");
    }
    start = end + 1;
  }
  ref.repository = std::string(path);
  if (ref.registry == "docker.io" && ref.repository.find('/') == std::string::npos) {
    ref.repository = "library/" + ref.repository;
  }
  if (ref.registry.size() + 1 + ref.repository.size() > kMaxNameLength) {
    return invalid(text, "the name is longer than 255 characters");
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

}  // namespace boxcar::images
