#include "base/terminal_escape.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

std::string line(std::string_view text) {
  std::string out;
  TerminalEscaper e;
  e.feed(text, out);
  e.end_line(out);
  return out;
}

// Every split of `text` into two feeds gives what one feed gives.
void expect_split_safe(std::string_view text) {
  std::string whole = line(text);
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    std::string out;
    TerminalEscaper e;
    e.feed(text.substr(0, cut), out);
    e.feed(text.substr(cut), out);
    e.end_line(out);
    EXPECT_EQ(out, whole) << "split at " << cut;
  }
  // And byte by byte.
  std::string out;
  TerminalEscaper e;
  for (char c : text) e.feed(std::string_view(&c, 1), out);
  e.end_line(out);
  EXPECT_EQ(out, whole) << "byte by byte";
}

TEST(TerminalEscapeTest, PlainTextAndUtf8PassUnchanged) {
  EXPECT_EQ(line("hello, world\ttab"), "hello, world\ttab");
  EXPECT_EQ(line("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x80"), "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x80");
  EXPECT_EQ(line("C:\\path\\x1b"), "C:\\path\\x1b");  // backslashes are not touched
  EXPECT_EQ(line(""), "");
}

TEST(TerminalEscapeTest, SgrColoursPassAndAreResetAtTheEndOfTheLine) {
  EXPECT_EQ(line("\x1b[31mred\x1b[0m"), "\x1b[31mred\x1b[0m");
  EXPECT_EQ(line("\x1b[1;38;5;208mx"), "\x1b[1;38;5;208mx\x1b[0m");  // left set: reset added
  EXPECT_EQ(line("\x1b[38:2:1:2:3mx\x1b[m"), "\x1b[38:2:1:2:3mx\x1b[m");
  EXPECT_EQ(line("\x1b[8mhidden"), "\x1b[8mhidden\x1b[0m");  // conceal ends with the line
}

TEST(TerminalEscapeTest, OscSequencesAreShownAsText) {
  // Clipboard write, hyperlink, window title: the ESC and the BEL become visible text.
  EXPECT_EQ(line("\x1b]52;c;aGVsbG8=\x07"), "\\x1b]52;c;aGVsbG8=\\x07");
  EXPECT_EQ(line("\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"),
            "\\x1b]8;;https://evil.example/\\x1b\\click\\x1b]8;;\\x1b\\");
  EXPECT_EQ(line("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
  EXPECT_EQ(line("\x1bP+q544e\x1b\\"), "\\x1bP+q544e\\x1b\\");  // DCS
}

TEST(TerminalEscapeTest, CsiOtherThanSgrIsShownAsText) {
  EXPECT_EQ(line("\x1b[2J\x1b[H"), "\\x1b[2J\\x1b[H");
  EXPECT_EQ(line("a\x1b[1A\x1b[2K"), "a\\x1b[1A\\x1b[2K");
  EXPECT_EQ(line("\x1b[?1049h"), "\\x1b[?1049h");
  EXPECT_EQ(line("\x1b[6n"), "\\x1b[6n");   // a report request: the terminal would type back
  EXPECT_EQ(line("\x1b[31;"), "\\x1b[31;");  // unterminated at the end of the line
  EXPECT_EQ(line("\x1b"), "\\x1b");
  EXPECT_EQ(line("\x1b\x1b[32mok"), "\\x1b\x1b[32mok\x1b[0m");
}

TEST(TerminalEscapeTest, ControlBytesAreShown) {
  EXPECT_EQ(line("a\rb"), "a\\rb");                  // would overwrite the [step] label
  EXPECT_EQ(line("done\r"), "done");                 // CRLF: harmless, dropped
  EXPECT_EQ(line("\b\b[deploy] ok"), "\\x08\\x08[deploy] ok");
  EXPECT_EQ(line("bell\x07 del\x7f nul"), "bell\\x07 del\\x7f nul");
  EXPECT_EQ(line(std::string_view("\0", 1)), "\\x00");
  EXPECT_EQ(line("two\nlines"), "two\\nlines");
  EXPECT_EQ(escape_for_terminal("name\r"), "name\\r");  // a value keeps its final CR visible
}

TEST(TerminalEscapeTest, C1ControlsBidiAndInvalidUtf8AreShown) {
  EXPECT_EQ(line("\xc2\x9b" "2J"), "\\u009b2J");          // CSI as a UTF-8 C1 control
  EXPECT_EQ(line("\xc2\x9d" "52;c;x\xc2\x9c"), "\\u009d52;c;x\\u009c");
  EXPECT_EQ(line("\x9b" "2J"), "\\x9b2J");                // 8-bit CSI, not UTF-8
  EXPECT_EQ(line("abc\xe2\x80\xae" "cba"), "abc\\u202ecba");  // right-to-left override
  EXPECT_EQ(line("\xc0\xaf"), "\\xc0\\xaf");               // overlong
  EXPECT_EQ(line("\xed\xa0\x80"), "\\xed\\xa0\\x80");      // a surrogate
  EXPECT_EQ(line("\xe2\x9c"), "\\xe2\\x9c");               // cut short by the end of the line
  EXPECT_EQ(line("\xe2\x9c" "x"), "\\xe2\\x9cx");
}

TEST(TerminalEscapeTest, SequencesSplitAcrossFeedsAreJudgedWhole) {
  expect_split_safe("a\x1b[31mred\x1b[0m b");
  expect_split_safe("x\x1b]52;c;aGk=\x07y");
  expect_split_safe("\x1b[2Jz\r\n");
  expect_split_safe("p\rq\xc2\x9bq\xe2\x80\xaer\xf0\x9f\x9a\x80s\xff");
  expect_split_safe("\x1b\x1b[1m\x1b[");
}

TEST(TerminalEscapeTest, ABrokenLineKeepsItsHeldBytesButNotItsColour) {
  std::string out;
  TerminalEscaper e;
  e.feed("\x1b[1mbold\x1b[3", out);
  e.break_line(out);
  EXPECT_EQ(out, "\x1b[1mbold\x1b[0m");
  out.clear();
  e.feed("2mgreen", out);
  e.end_line(out);
  EXPECT_EQ(out, "\x1b[32mgreen\x1b[0m");
}

TEST(TerminalEscapeTest, HeldBytesStayBounded) {
  // An endless OSC string is plain text after its ESC: nothing is held.
  std::string out;
  TerminalEscaper e;
  e.feed("\x1b]52;c;", out);
  for (int i = 0; i < 1000; ++i) e.feed(std::string(1000, 'A'), out);
  EXPECT_EQ(out.size(), std::string("\\x1b]52;c;").size() + 1000000);
  // A CSI whose parameters never end is let go, escaped, past kMaxHeld bytes.
  out.clear();
  e.end_line(out);
  out.clear();
  e.feed("\x1b[", out);
  e.feed(std::string(TerminalEscaper::kMaxHeld * 4, '1'), out);
  EXPECT_EQ(out.substr(0, 6), "\\x1b[1");
  EXPECT_GE(out.size(), TerminalEscaper::kMaxHeld * 3);
  e.feed("m", out);  // too late to be a colour: not a bare ESC [ ... m
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
}

}  // namespace
}  // namespace boxcar
