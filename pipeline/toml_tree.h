// A parsed TOML document as plain values with source positions; only toml_tree.cc sees toml++.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/load.h"
#include "pipeline/pipeline.h"

namespace boxcar::pipeline {

struct TomlEntry;

struct TomlNode {
  enum class Kind { string, integer, floating, boolean, datetime, array, table };

  Kind kind = Kind::table;
  SourcePos pos;  // where the value starts (a table's header, or its `{`)
  std::string str;  // Kind::string
  int64_t integer = 0;
  double floating = 0;
  bool boolean = false;
  std::vector<TomlNode> array;
  std::vector<TomlEntry> table;  // sorted by key, as toml++ keeps them

  bool is_string() const { return kind == Kind::string; }
  bool is_table() const { return kind == Kind::table; }
  bool is_array() const { return kind == Kind::array; }

  // The entry for `key` in a table, or nullptr.
  const TomlEntry* find(std::string_view key) const;
};

struct TomlEntry {
  std::string key;
  SourcePos key_pos;  // where the key itself is written
  TomlNode value;
};

// "a string", "an integer", ...: for "must be X, not Y" messages.
const char* kind_name(TomlNode::Kind kind);

struct TomlParse {
  std::optional<TomlNode> root;     // set when the text is valid TOML
  std::optional<Diagnostic> error;  // the syntax error otherwise
};

// Parses TOML text; a syntax error becomes one diagnostic with its position.
TomlParse parse_toml(std::string_view text, const std::string& file);

}  // namespace boxcar::pipeline
