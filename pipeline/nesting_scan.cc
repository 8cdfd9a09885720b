// scan_nesting: the depth of a TOML text without parsing it, so that a file of 100,000
// `[` or `a.a.a...` is refused before any recursive code sees it.
#include <vector>

#include "pipeline/limits.h"

namespace boxcar::pipeline {
namespace {

class Scanner {
 public:
  Scanner(std::string_view text, int stop_above) : text_(text), stop_above_(stop_above) {}

  NestingScan run() {
    while (i_ < text_.size() && result_.depth <= stop_above_) step();
    return result_;
  }

 private:
  // An open array (`]`) or inline table (`}`) and its own depth.
  struct Frame {
    char close;
    int depth;
  };

  char at(size_t k) const { return k < text_.size() ? text_[k] : '\0'; }
  SourcePos pos() const {
    return SourcePos{line_, static_cast<int>(i_ - line_start_) + 1};
  }
  void note(int depth) {
    if (depth <= result_.depth) return;
    result_.depth = depth;
    result_.where = pos();
  }
  void newline() {
    ++line_;
    line_start_ = i_ + 1;
  }
  // Past one character, counting lines.
  void advance() {
    if (text_[i_] == '\n') newline();
    ++i_;
  }

  // Past a string starting at i_ (a quote): "...", '...', """...""" or '''...'''. A
  // single-line string ends at the end of its line at the latest.
  void skip_string() {
    char q = text_[i_];
    bool multi = at(i_ + 1) == q && at(i_ + 2) == q;
    i_ += multi ? 3 : 1;
    while (i_ < text_.size()) {
      char c = text_[i_];
      if (c == '\\' && q == '"') {
        advance();
        if (i_ < text_.size()) advance();
        continue;
      }
      if (c == '\n' && !multi) return;
      if (c == q && (!multi || (at(i_ + 1) == q && at(i_ + 2) == q))) {
        i_ += multi ? 3 : 1;
        // """a"""" ends with the string's own quote: up to two more belong to it.
        for (int extra = 0; multi && extra < 2 && at(i_) == q; ++extra) ++i_;
        return;
      }
      advance();
    }
  }

  void skip_comment() {
    while (i_ < text_.size() && text_[i_] != '\n') ++i_;
  }

  // A key up to its `=`: the number of its dotted parts.
  int key_parts() {
    int parts = 1;
    while (i_ < text_.size()) {
      char c = text_[i_];
      if (c == '"' || c == '\'') {
        skip_string();
        continue;
      }
      if (c == '=' || c == '\n' || c == '}' || c == '#') break;
      if (c == '.') ++parts;
      ++i_;
    }
    if (at(i_) == '=') ++i_;
    return parts;
  }

  // `[a.b]` or `[[a.b]]` at the start of a line. Each part before the last may be the last
  // table of an array of tables: two levels.
  void header() {
    bool array = at(i_ + 1) == '[';
    SourcePos start = pos();
    i_ += array ? 2 : 1;
    int parts = 1;
    while (i_ < text_.size() && text_[i_] != ']' && text_[i_] != '\n') {
      char c = text_[i_];
      if (c == '"' || c == '\'') {
        skip_string();
        continue;
      }
      if (c == '.') ++parts;
      ++i_;
    }
    while (at(i_) == ']') ++i_;
    table_depth_ = 2 * (parts - 1) + (array ? 2 : 1);
    if (table_depth_ > result_.depth) {
      result_.depth = table_depth_;
      result_.where = start;
    }
  }

  void step() {
    char c = text_[i_];
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i_;
      return;
    }
    if (c == '\n') {
      if (stack_.empty()) expect_key_ = true;
      advance();
      return;
    }
    if (c == '#') return skip_comment();
    if (expect_key_) return key(c);
    value(c);
  }

  void key(char c) {
    if (stack_.empty() && c == '[') return header();
    if (c == '}' || c == ',') return value(c);  // `{}`, or a stray comma
    int base = stack_.empty() ? table_depth_ : stack_.back().depth;
    SourcePos start = pos();
    int depth = base + key_parts();
    if (depth > result_.depth) {
      result_.depth = depth;
      result_.where = start;
    }
    value_depth_ = depth;
    expect_key_ = false;
  }

  void value(char c) {
    if (c == '"' || c == '\'') return skip_string();
    if (c == '[' || c == '{') {
      note(value_depth_);
      stack_.push_back(Frame{c == '[' ? ']' : '}', value_depth_});
      ++i_;
      if (c == '[') {
        value_depth_ = stack_.back().depth + 1;
      } else {
        expect_key_ = true;
      }
      return;
    }
    if (c == ']' || c == '}') {
      if (!stack_.empty()) stack_.pop_back();
      ++i_;
      after_value();
      return;
    }
    if (c == ',') {
      ++i_;
      if (!stack_.empty() && stack_.back().close == '}') {
        expect_key_ = true;
      } else if (!stack_.empty()) {
        value_depth_ = stack_.back().depth + 1;
      }
      return;
    }
    ++i_;  // part of a number, a date, true or false
  }

  // A value ended: the next thing is another element, a `,`, or the end of the line.
  void after_value() {
    expect_key_ = false;
    if (!stack_.empty() && stack_.back().close == ']') value_depth_ = stack_.back().depth + 1;
  }

  std::string_view text_;
  int stop_above_;
  size_t i_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;
  std::vector<Frame> stack_;
  int table_depth_ = 0;   // of the current [table]
  int value_depth_ = 0;   // of the value about to start
  bool expect_key_ = true;
  NestingScan result_;
};

}  // namespace

NestingScan scan_nesting(std::string_view text, int stop_above) {
  return Scanner(text, stop_above).run();
}

}  // namespace boxcar::pipeline
