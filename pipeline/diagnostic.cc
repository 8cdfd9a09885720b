// Diagnostic text: one line per error, and the ninja-style rendering with the source line.
#include "pipeline/load.h"

#include <algorithm>

namespace boxcar::pipeline {
namespace {

constexpr size_t kMaxShownLine = 160;

// Line `line` (1-based) of `text`, without its newline; nullopt past the end.
std::optional<std::string_view> source_line(std::string_view text, int line) {
  size_t start = 0;
  for (int i = 1; i < line; ++i) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) return std::nullopt;
    start = nl + 1;
  }
  if (start > text.size()) return std::nullopt;
  size_t end = text.find('\n', start);
  std::string_view out = text.substr(start, end == std::string_view::npos ? end : end - start);
  if (!out.empty() && out.back() == '\r') out.remove_suffix(1);
  return out;
}

}  // namespace

std::string Diagnostic::to_string() const {
  std::string out = file;
  if (pos.line > 0) {
    out += ":" + std::to_string(pos.line);
    if (pos.column > 0) out += ":" + std::to_string(pos.column);
  }
  return out + ": error: " + message;
}

std::string render_diagnostics(const std::vector<Diagnostic>& errors, std::string_view text) {
  std::string out;
  for (const Diagnostic& d : errors) {
    out += d.to_string() + "\n";
    if (d.pos.line <= 0) continue;
    auto line = source_line(text, d.pos.line);
    if (!line) continue;
    size_t caret = d.pos.column > 0 ? static_cast<size_t>(d.pos.column - 1) : 0;
    // A hostile file can be one line of a megabyte: show the part around the caret.
    std::string before, after;
    if (line->size() > kMaxShownLine) {
      size_t start = caret > kMaxShownLine / 2 ? caret - kMaxShownLine / 2 : 0;
      start = std::min(start, line->size() - kMaxShownLine);
      if (start > 0) before = "...";
      if (start + kMaxShownLine < line->size()) after = "...";
      *line = line->substr(start, kMaxShownLine);
      caret = caret - start + before.size();
    }
    std::string shown = before + std::string(*line) + after;
    out += shown + "\n";
    // Keep tabs so the caret lines up however the terminal expands them.
    std::string pad;
    for (size_t i = 0; i < caret && i < shown.size(); ++i) pad += shown[i] == '\t' ? '\t' : ' ';
    out += pad + "^\n";
  }
  return out;
}

}  // namespace boxcar::pipeline
