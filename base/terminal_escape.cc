#include "base/terminal_escape.h"

namespace boxcar {

namespace {

constexpr char kHex[] = "0123456789abcdef";

void hex_byte(unsigned char c, std::string& out) {
  out += "\\x";
  out += kHex[c >> 4];
  out += kHex[c & 15];
}

// Printable ASCII and tab: the bytes that need no look at all (the fast path).
bool plain(unsigned char c) { return (c >= 0x20 && c < 0x7f) || c == '\t'; }

bool sgr_param(unsigned char c) { return (c >= '0' && c <= '9') || c == ';' || c == ':'; }

// Code points a UTF-8 terminal acts on or that reorder what is shown: C1 controls (CSI is
// U+009B, OSC U+009D) and the bidirectional embeddings, overrides and isolates.
bool shown_escaped(char32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

void TerminalEscaper::feed(std::string_view bytes, std::string& out) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size(), i = 0;
  while (i < n) {
    if (state_ == State::ground) {
      size_t j = i;
      while (j < n && plain(b[j])) ++j;
      out.append(bytes.data() + i, j - i);
      if (j == n) return;
      i = j;
      ground(b[i++], out);
      continue;
    }
    unsigned char c = b[i++];
    switch (state_) {
      case State::ground:
        break;
      case State::cr:
        state_ = State::ground;
        out += "\\r";
        ground(c, out);
        break;
      case State::esc:
        if (c == '[') {
          held_ += static_cast<char>(c);
          state_ = State::csi;
        } else {
          flush_held(out);
          ground(c, out);
        }
        break;
      case State::csi:
        if (sgr_param(c)) {
          held_ += static_cast<char>(c);
          if (held_.size() > kMaxHeld) flush_held(out);
        } else if (c == 'm') {
          out += held_;
          out += 'm';
          // Only '0's and ';'s (or nothing) reset every attribute; anything else may set one.
          colored_ = held_.find_first_not_of("0;", 2) != std::string::npos;
          held_.clear();
          state_ = State::ground;
        } else {
          flush_held(out);
          ground(c, out);
        }
        break;
      case State::utf8:
        if (c >= utf8_lo_ && c <= utf8_hi_) {
          held_ += static_cast<char>(c);
          utf8_lo_ = 0x80;
          utf8_hi_ = 0xbf;
          if (--utf8_need_ == 0) utf8_done(out);
        } else {
          flush_held(out);
          ground(c, out);
        }
        break;
    }
  }
}

void TerminalEscaper::ground(unsigned char c, std::string& out) {
  state_ = State::ground;
  if (plain(c)) {
    out += static_cast<char>(c);
    return;
  }
  if (c == '\r') {
    state_ = State::cr;  // harmless right before the end of a line (CRLF), shown otherwise
    return;
  }
  if (c == 0x1b) {
    held_.assign(1, '\x1b');
    state_ = State::esc;
    return;
  }
  if (c == '\n') {
    out += "\\n";
    return;
  }
  if (c < 0x80) {  // the other C0 controls and DEL
    hex_byte(c, out);
    return;
  }
  // A UTF-8 lead byte: how many continuation bytes follow, and the range of the first one
  // (which rules out overlong forms, surrogates and code points past U+10FFFF).
  utf8_lo_ = 0x80;
  utf8_hi_ = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    utf8_need_ = 1;
  } else if (c >= 0xe0 && c <= 0xef) {
    utf8_need_ = 2;
    if (c == 0xe0) utf8_lo_ = 0xa0;
    if (c == 0xed) utf8_hi_ = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    utf8_need_ = 3;
    if (c == 0xf0) utf8_lo_ = 0x90;
    if (c == 0xf4) utf8_hi_ = 0x8f;
  } else {
    hex_byte(c, out);  // a continuation byte alone, C0/C1 (overlong) or F5..FF: not UTF-8
    return;
  }
  held_.assign(1, static_cast<char>(c));
  state_ = State::utf8;
}

void TerminalEscaper::utf8_done(std::string& out) {
  const auto* b = reinterpret_cast<const unsigned char*>(held_.data());
  char32_t cp = 0;
  switch (held_.size()) {
    case 2: cp = (b[0] & 0x1fu) << 6 | (b[1] & 0x3fu); break;
    case 3: cp = (b[0] & 0x0fu) << 12 | (b[1] & 0x3fu) << 6 | (b[2] & 0x3fu); break;
    default: cp = (b[0] & 0x07u) << 18 | (b[1] & 0x3fu) << 12 | (b[2] & 0x3fu) << 6 | (b[3] & 0x3fu);
  }
  if (shown_escaped(cp)) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(cp >> shift) & 15];
  } else {
    out += held_;
  }
  held_.clear();
  state_ = State::ground;
}

void TerminalEscaper::flush_held(std::string& out) {
  switch (state_) {
    case State::ground:
      break;
    case State::cr:
      out += "\\r";
      break;
    case State::esc:
    case State::csi:
      out += "\\x1b";
      out.append(held_, 1);  // '[' and parameter bytes: printable
      break;
    case State::utf8:
      for (unsigned char c : held_) hex_byte(c, out);
      break;
  }
  held_.clear();
  state_ = State::ground;
}

void TerminalEscaper::end_line(std::string& out) {
  if (state_ == State::cr) state_ = State::ground;
  finish(out);
}

void TerminalEscaper::break_line(std::string& out) {
  if (colored_) out += "\x1b[0m";
  colored_ = false;
}

void TerminalEscaper::finish(std::string& out) {
  flush_held(out);
  if (colored_) out += "\x1b[0m";
  colored_ = false;
}

std::string escape_for_terminal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  TerminalEscaper e;
  e.feed(text, out);
  e.finish(out);
  return out;
}

}  // namespace boxcar
