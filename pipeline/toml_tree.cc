#include "pipeline/toml_tree.h"

#include <toml++/toml.h>

namespace boxcar::pipeline {
namespace {

SourcePos to_pos(const toml::source_position& p) {
  return SourcePos{static_cast<int>(p.line), static_cast<int>(p.column)};
}

TomlNode convert(const toml::node& node) {
  TomlNode out;
  out.pos = to_pos(node.source().begin);
  switch (node.type()) {
    case toml::node_type::string:
      out.kind = TomlNode::Kind::string;
      out.str = node.as_string()->get();
      break;
    case toml::node_type::integer:
      out.kind = TomlNode::Kind::integer;
      out.integer = node.as_integer()->get();
      break;
    case toml::node_type::floating_point:
      out.kind = TomlNode::Kind::floating;
      out.floating = node.as_floating_point()->get();
      break;
    case toml::node_type::boolean:
      out.kind = TomlNode::Kind::boolean;
      out.boolean = node.as_boolean()->get();
      break;
    case toml::node_type::array:
      out.kind = TomlNode::Kind::array;
      for (const toml::node& item : *node.as_array()) out.array.push_back(convert(item));
      break;
    case toml::node_type::table:
      out.kind = TomlNode::Kind::table;
      for (const auto& [key, value] : *node.as_table()) {
        out.table.push_back(TomlEntry{std::string(key.str()), to_pos(key.source().begin),
                                      convert(value)});
      }
      break;
    default:  // date, time, date_time, none
      out.kind = TomlNode::Kind::datetime;
      break;
  }
  return out;
}

}  // namespace

const TomlEntry* TomlNode::find(std::string_view key) const {
  for (const TomlEntry& e : table) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

const char* kind_name(TomlNode::Kind kind) {
  switch (kind) {
    case TomlNode::Kind::string: return "a string";
    case TomlNode::Kind::integer: return "an integer";
    case TomlNode::Kind::floating: return "a float";
    case TomlNode::Kind::boolean: return "a boolean";
    case TomlNode::Kind::datetime: return "a date/time";
    case TomlNode::Kind::array: return "an array";
    case TomlNode::Kind::table: return "a table";
  }
  return "a value";
}

TomlParse parse_toml(std::string_view text, const std::string& file) {
  TomlParse result;
  try {
    toml::table table = toml::parse(text, std::string_view(file));
    result.root = convert(table);
    result.root->pos = SourcePos{1, 1};
  } catch (const toml::parse_error& e) {
    result.error = Diagnostic{file, to_pos(e.source().begin), std::string(e.description())};
  }
  return result;
}

}  // namespace boxcar::pipeline
