#include "base/host_pattern.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace boxcar {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Letters, digits, '-' (and '_', which real names such as _dmarc records carry), labels of
// 1..63, 253 at most, no leading or trailing '-'.
std::string name_problem(std::string_view name) {
  if (name.empty()) return "the name is empty";
  if (name.size() > 253) return "the name is longer than 253 characters";
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    std::string_view label = name.substr(start, dot - start);
    if (label.empty()) return "the name has an empty label (two dots, or a dot at an end)";
    if (label.size() > 63) return "a label is longer than 63 characters";
    for (char c : label) {
      if (c == '*') return "'*' is only allowed as the whole first label, as in \"*.example.com\"";
      if (!label_char(c)) return std::string("the name has the character '") + c + "'; names are letters, digits, '-' and '.'";
    }
    if (label.front() == '-' || label.back() == '-') return "a label starts or ends with '-'";
    start = dot + 1;
  }
  return {};
}

bool looks_like_address(std::string_view name) {
  unsigned char buf[16];
  std::string s(name);
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

std::string HostPattern::text() const { return port ? name + ":" + std::to_string(*port) : name; }

Result<HostPattern> parse_host_pattern(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Error{"\"" + std::string(text) + "\": " + why, 0, ErrorCode::invalid_input};
  };
  if (text.size() > 260) return bad("too long for a host name");
  std::string_view host = text;
  HostPattern p;
  if (size_t colon = text.rfind(':'); colon != std::string_view::npos) {
    if (text.find(':') != colon || text.front() == '[') {
      return bad("an address is not a name; addresses and networks go in the agent's --egress-allow");
    }
    std::string_view port = text.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
      return bad("the port must be 1..65535");
    }
    p.port = static_cast<uint16_t>(value);
    host = text.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  std::string name = lowered(host);
  if (looks_like_address(name)) {
    return bad("an address is not a name; addresses and networks go in the agent's --egress-allow");
  }
  std::string_view rest = name;
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  if (std::string why = name_problem(rest); !why.empty()) return bad(why);
  if (name.starts_with("*.") && rest.find('.') == std::string_view::npos) {
    return bad("a wildcard must name a domain with at least two labels (\"*.example.com\", not \"*.com\")");
  }
  p.name = std::move(name);
  return p;
}

bool host_pattern_matches(const HostPattern& pattern, std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  std::string h = lowered(host);
  if (!pattern.wildcard()) return h == pattern.name;
  std::string_view suffix = std::string_view(pattern.name).substr(1);  // ".example.com"
  return h.size() > suffix.size() && h.ends_with(suffix);
}

}  // namespace boxcar
