#include "agent/local/step_label.h"

#include <iterator>

#include "base/terminal_escape.h"

namespace boxcar::agent {

namespace {

constexpr const char* kReset = "\x1b[0m";
// Neither red nor green, which mean failure and success in the summary.
constexpr const char* kPalette[] = {"\x1b[36m", "\x1b[35m", "\x1b[34m", "\x1b[96m",
                                    "\x1b[95m", "\x1b[94m", "\x1b[33m", "\x1b[93m"};

}  // namespace

std::string step_label(size_t index, std::string_view name, bool color) {
  std::string p;
  if (color) p += kPalette[index % std::size(kPalette)];
  p += '[';
  p += escape_for_terminal(name);
  p += ']';
  if (color) p += kReset;
  p += ' ';
  return p;
}

}  // namespace boxcar::agent
