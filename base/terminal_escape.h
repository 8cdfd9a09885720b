// TerminalEscaper: untrusted bytes (step output, names from a job) made safe to show on a terminal.
//
// Only SGR sequences (ESC [ digits/';'/':' m: colours, bold) reach the terminal as they are.
// Everything else a terminal would act on is shown as visible text instead:
//   C0 controls but tab, ESC, DEL      -> \x1b, \x07, \x7f ...   (\r as \r, \n as \n, \b as \b)
//   so OSC (ESC ] 52;c;... BEL: clipboard, ESC ] 8: links, ESC ] 0: title), DCS, CSI other than SGR
//   (ESC [2J, ESC [H, cursor movement) show as text: `\x1b]52;c;aGk=\x07`, `\x1b[2J`
//   C1 controls (U+0080..U+009F, which UTF-8 terminals obey) -> \u009b
//   bidirectional overrides and isolates (U+202A..U+202E, U+2066..U+2069) -> \u202e
//   bytes that are not UTF-8 (a raw 0x9b is CSI on an 8-bit terminal) -> \x9b
// Nothing is buffered but the bytes that may still become an SGR sequence or a UTF-8 character
// (at most kMaxHeld), so a sequence split across feed() calls is judged whole, and an endless
// OSC string costs nothing: its ESC is escaped at once and the rest is plain text.
// Backslashes pass as they are: the escaped forms are for the eye, the stored log keeps the bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace boxcar {

class TerminalEscaper {
 public:
  static constexpr size_t kMaxHeld = 32;  // an SGR sequence longer than this is shown escaped

  // Appends the safe form of `bytes` to `out`, continuing what earlier calls left unfinished.
  void feed(std::string_view bytes, std::string& out);

  // The caller ends the line: held bytes are shown escaped, a '\r' just before the end (CRLF)
  // is dropped, and when a colour is still set, a reset (ESC [0m) follows so it cannot bleed
  // into the next line or into boxcar's own text.
  void end_line(std::string& out);

  // The caller breaks the line here but it goes on in the next feed (a long line cut in
  // pieces): held bytes stay held for the next piece; a colour still set is reset.
  void break_line(std::string& out);

  // The end of one value (a name, a path): like end_line, but a final '\r' is shown.
  void finish(std::string& out);

 private:
  enum class State { ground, esc, csi, cr, utf8 };
  void flush_held(std::string& out);
  void ground(unsigned char c, std::string& out);
  void utf8_done(std::string& out);

  State state_ = State::ground;
  std::string held_;        // ESC, ESC [ params, or a partial UTF-8 character
  size_t utf8_need_ = 0;    // continuation bytes still expected
  unsigned char utf8_lo_ = 0x80, utf8_hi_ = 0xbf;  // the range of the next continuation byte
  bool colored_ = false;    // an SGR other than a reset passed since the last reset
};

// One value at once (artifact paths, step names, reasons): feed + finish.
std::string escape_for_terminal(std::string_view text);

}  // namespace boxcar
