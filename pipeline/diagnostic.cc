// Diagnostic text: one line per error, and the ninja-style rendering with the source line.
#include "pipeline/load.h"

namespace boxcar::pipeline {
namespace {

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
    out += std::string(*line) + "\n";
    // Keep tabs so the caret lines up however the terminal expands them.
    std::string pad;
    for (int i = 0; i + 1 < d.pos.column && static_cast<size_t>(i) < line->size(); ++i) {
      pad += (*line)[static_cast<size_t>(i)] == '\t' ? '\t' : ' ';
    }
    out += pad + "^\n";
  }
  return out;
}

}  // namespace boxcar::pipeline
