#include "server/web_log_html.h"

#include <charconv>
#include <optional>

#include "base/terminal_escape.h"
#include "server/web_page.h"

namespace boxcar::server {

namespace {

struct Style {
  int fg = -1, bg = -1;
  bool bold = false;
  std::string classes() const {
    std::string out;
    auto add = [&](const std::string& c) { out += (out.empty() ? "" : " ") + c; };
    if (bold) add("b");
    if (fg >= 0) add("f" + std::to_string(fg));
    if (bg >= 0) add("g" + std::to_string(bg));
    return out;
  }
};

std::optional<int> number(std::string_view text) {
  if (text.empty()) return 0;  // an empty parameter means 0
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

// Applies the parameters of one SGR sequence ("1;31", "38;5;208", "4:3").
void apply_sgr(std::string_view params, Style& style) {
  std::vector<std::string_view> parts;
  while (true) {
    size_t semi = params.find(';');
    parts.push_back(params.substr(0, semi));
    if (semi == std::string_view::npos) break;
    params.remove_prefix(semi + 1);
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].find(':') != std::string_view::npos) continue;  // 38:5:n, 4:3: dropped
    auto n = number(parts[i]);
    if (!n) continue;
    if (*n == 0) {
      style = Style{};
    } else if (*n == 1) {
      style.bold = true;
    } else if (*n == 22) {
      style.bold = false;
    } else if (*n >= 30 && *n <= 37) {
      style.fg = *n - 30;
    } else if (*n >= 90 && *n <= 97) {
      style.fg = *n - 90 + 8;
    } else if (*n == 39) {
      style.fg = -1;
    } else if (*n >= 40 && *n <= 47) {
      style.bg = *n - 40;
    } else if (*n >= 100 && *n <= 107) {
      style.bg = *n - 100 + 8;
    } else if (*n == 49) {
      style.bg = -1;
    } else if ((*n == 38 || *n == 48) && i + 1 < parts.size()) {
      // 256 colours and true colour are dropped, with their arguments.
      auto mode = number(parts[i + 1]);
      i += mode == 5 ? 2 : mode == 2 ? 4 : 1;
    }
  }
}

// A line as TerminalEscaper left it (its only ESC bytes start SGR sequences) -> styled runs.
LogLine spans_of(std::string_view safe) {
  LogLine line;
  Style style;
  std::string text;
  auto flush = [&] {
    if (text.empty()) return;
    std::string classes = style.classes();
    if (!line.empty() && line.back().classes == classes) {
      line.back().text += text;
    } else {
      line.push_back({std::move(classes), std::move(text)});
    }
    text.clear();
  };
  size_t i = 0;
  while (i < safe.size()) {
    if (safe[i] == '\x1b' && i + 1 < safe.size() && safe[i + 1] == '[') {
      size_t m = safe.find('m', i + 2);
      if (m == std::string_view::npos) break;  // cannot happen after TerminalEscaper: dropped
      flush();
      apply_sgr(safe.substr(i + 2, m - i - 2), style);
      i = m + 1;
      continue;
    }
    if (safe[i] != '\x1b') text += safe[i];
    ++i;
  }
  flush();
  return line;
}

}  // namespace

std::vector<LogLine> log_lines(std::string_view data) {
  std::vector<LogLine> lines;
  while (!data.empty()) {
    size_t nl = data.find('\n');
    std::string safe;
    TerminalEscaper e;
    e.feed(data.substr(0, nl), safe);
    e.end_line(safe);
    lines.push_back(spans_of(safe));
    if (nl == std::string_view::npos) break;
    data.remove_prefix(nl + 1);
  }
  return lines;
}

std::string line_html(const LogLine& line) {
  std::string out;
  for (const LogSpan& s : line) {
    if (s.classes.empty()) {
      out += escape_html(s.text);
    } else {
      out += "<span class=\"" + escape_html(s.classes) + "\">" + escape_html(s.text) + "</span>";
    }
  }
  return out + "\n";
}

boost::json::array lines_json(const std::vector<LogLine>& lines) {
  boost::json::array out;
  for (const LogLine& line : lines) {
    boost::json::array spans;
    for (const LogSpan& s : line) spans.push_back(boost::json::array{s.classes, s.text});
    out.push_back(std::move(spans));
  }
  return out;
}

}  // namespace boxcar::server
