// Log text as the web UI shows it: split into lines, each made safe as on a terminal
// (base/terminal_escape.h: control bytes shown escaped, only SGR sequences kept), then its SGR
// colours (16 colours, foreground and background, and bold) turned into styled runs; every
// other attribute is dropped. The runs hold plain text: the page escapes it (line_html), the
// live script sets it with textContent, so a step cannot print markup.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>

namespace boxcar::server {

struct LogSpan {
  std::string classes;  // "", or some of "b" (bold), "f0".."f15" (colour), "g0".."g15" (background)
  std::string text;     // as the line shows it, not escaped for HTML
  bool operator==(const LogSpan&) const = default;
};
using LogLine = std::vector<LogSpan>;

// The lines of `data`; a last line without its '\n' counts as a line (a chunk ends a line).
std::vector<LogLine> log_lines(std::string_view data);
// One line as HTML: <span class="...">escaped text</span> for styled runs, escaped text
// otherwise, and a trailing '\n'.
std::string line_html(const LogLine& line);
// Lines as JSON for the live script: [[[classes, text], ...], ...].
boost::json::array lines_json(const std::vector<LogLine>& lines);

}  // namespace boxcar::server
