// JsonReader: reads the fields of a JSON object into C++ values without throwing, and names the
// first missing or mistyped field ("chunks[2].seq: expected an integer, got a string").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "base/result.h"

namespace boxcar::protocol {

// Parses JSON text; a syntax error is an Error with the byte position, never an exception.
Result<boost::json::value> parse_json(std::string_view text);

// "a string", "an integer", ... for error messages.
std::string json_kind(const boost::json::value& v);

class JsonReader {
 public:
  // `path` prefixes field names in errors ("chunks[2]"); empty for the top level.
  explicit JsonReader(const boost::json::value& v, std::string path = "");

  // A present field of the wrong type is an error either way; a missing (or null) optional
  // field leaves `out` as it was. After the first error every call is a no-op.
  template <typename T>
  JsonReader& required(std::string_view key, T& out) {
    if (const auto* f = field(key, true)) read(*f, out, name(key));
    return *this;
  }
  template <typename T>
  JsonReader& optional(std::string_view key, T& out) {
    if (const auto* f = field(key, false)) read(*f, out, name(key));
    return *this;
  }

  // The field's value, or null when it is absent or JSON null (an error if `required`).
  const boost::json::value* field(std::string_view key, bool required);
  // "path.key" for messages.
  std::string name(std::string_view key) const;
  void fail(std::string message);

  // Every key of the object must be one of `keys`: an unknown one fails with the closest known
  // key as "did you mean" (a typo in an API body is an error, never silently ignored).
  JsonReader& known(const std::vector<std::string>& keys);

  bool ok() const { return !error_; }
  const Error& error() const { return *error_; }
  // The field the first error is about ("resources.memory"); "" when it is about the body.
  const std::string& error_field() const { return error_field_; }

  // Conversions, also usable for array elements; `name` is what errors call the value.
  void read(const boost::json::value& v, std::string& out, const std::string& name);
  void read(const boost::json::value& v, bool& out, const std::string& name);
  void read(const boost::json::value& v, int& out, const std::string& name);
  void read(const boost::json::value& v, int64_t& out, const std::string& name);
  void read(const boost::json::value& v, std::vector<std::string>& out, const std::string& name);
  void read(const boost::json::value& v, std::map<std::string, std::string>& out,
            const std::string& name);
  template <typename T>
  void read(const boost::json::value& v, std::optional<T>& out, const std::string& name) {
    if (v.is_null()) {
      out.reset();
      return;
    }
    T inner{};
    read(v, inner, name);
    if (ok()) out = std::move(inner);
  }

 private:
  void mistyped(const boost::json::value& v, const std::string& name, const char* expected);

  const boost::json::value& v_;
  std::string path_;
  std::optional<Error> error_;
  std::string error_field_;
};

}  // namespace boxcar::protocol
