#include "images/registry_text.h"

#include <cstdio>

#include "base/terminal_escape.h"

namespace boxcar::images {

std::string registry_text(std::string_view text, size_t max_bytes) {
  bool cut = text.size() > max_bytes;
  if (cut) text = text.substr(0, max_bytes);
  // C0 controls and DEL first: escape_for_terminal lets SGR sequences through, which a registry
  // could use to hide or recolour the rest of boxcar's message.
  std::string plain;
  plain.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      plain += buf;
    } else {
      plain += c;
    }
  }
  std::string out = escape_for_terminal(plain);
  if (cut) out += "...";
  return out;
}

}  // namespace boxcar::images
