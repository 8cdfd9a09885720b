#include "protocol/json_reader.h"

#include <algorithm>
#include <limits>

#include <boost/json/parse.hpp>

#include "base/suggest.h"

namespace boxcar::protocol {

namespace json = boost::json;

Result<json::value> parse_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return Error{"malformed JSON: " + ec.message()};
  return v;
}

std::string json_kind(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64: return "an integer";
    case json::kind::double_: return "a number";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "a value";
}

JsonReader::JsonReader(const json::value& v, std::string path) : v_(v), path_(std::move(path)) {}

std::string JsonReader::name(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void JsonReader::fail(std::string message) {
  if (!error_) error_ = Error{std::move(message)};
}

void JsonReader::mistyped(const json::value& v, const std::string& name, const char* expected) {
  if (!error_) error_field_ = name;
  fail("\"" + name + "\": expected " + expected + ", got " + json_kind(v));
}

const json::value* JsonReader::field(std::string_view key, bool required) {
  if (error_) return nullptr;
  if (!v_.is_object()) {
    fail((path_.empty() ? std::string("the body") : "\"" + path_ + "\"") +
         ": expected a JSON object, got " + json_kind(v_));
    return nullptr;
  }
  const json::value* f = v_.as_object().if_contains(key);
  if (f == nullptr || f->is_null()) {
    if (required && !error_) {
      error_field_ = name(key);
      fail("missing required field \"" + name(key) + "\"");
    }
    return nullptr;
  }
  return f;
}

void JsonReader::read(const json::value& v, std::string& out, const std::string& name) {
  if (error_) return;
  if (!v.is_string()) return mistyped(v, name, "a string");
  out = std::string(v.get_string());
}

void JsonReader::read(const json::value& v, bool& out, const std::string& name) {
  if (error_) return;
  if (!v.is_bool()) return mistyped(v, name, "a boolean");
  out = v.get_bool();
}

void JsonReader::read(const json::value& v, int64_t& out, const std::string& name) {
  if (error_) return;
  if (v.is_int64()) {
    out = v.get_int64();
  } else if (v.is_uint64() &&
             v.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    out = static_cast<int64_t>(v.get_uint64());
  } else if (v.is_uint64()) {
    fail("\"" + name + "\": integer out of range");
  } else {
    mistyped(v, name, "an integer");
  }
}

void JsonReader::read(const json::value& v, int& out, const std::string& name) {
  int64_t wide = 0;
  read(v, wide, name);
  if (error_) return;
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
    return fail("\"" + name + "\": integer out of range");
  }
  out = static_cast<int>(wide);
}

void JsonReader::read(const json::value& v, std::vector<std::string>& out,
                      const std::string& name) {
  if (error_) return;
  if (!v.is_array()) return mistyped(v, name, "an array of strings");
  std::vector<std::string> items;
  const auto& arr = v.get_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string s;
    read(arr[i], s, name + "[" + std::to_string(i) + "]");
    if (error_) return;
    items.push_back(std::move(s));
  }
  out = std::move(items);
}

void JsonReader::read(const json::value& v, std::map<std::string, std::string>& out,
                      const std::string& name) {
  if (error_) return;
  if (!v.is_object()) return mistyped(v, name, "an object of strings");
  std::map<std::string, std::string> items;
  for (const auto& [key, value] : v.get_object()) {
    std::string s;
    read(value, s, name + "." + std::string(key));
    if (error_) return;
    items.emplace(std::string(key), std::move(s));
  }
  out = std::move(items);
}

JsonReader& JsonReader::known(const std::vector<std::string>& keys) {
  if (error_ || !v_.is_object()) return *this;
  for (const auto& [key, value] : v_.as_object()) {
    if (std::find(keys.begin(), keys.end(), std::string_view(key)) != keys.end()) continue;
    std::string message = "unknown field \"" + name(key) + "\"";
    if (auto near = closest_match(key, keys)) {
      message += " (did you mean \"" + *near + "\"?)";
    } else {
      message += " (known fields:";
      for (const auto& k : keys) message += " " + k;
      message += ")";
    }
    error_field_ = name(key);
    fail(std::move(message));
    break;
  }
  return *this;
}

}  // namespace boxcar::protocol
