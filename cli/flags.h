// Flags: a small, strict command-line parser. Unknown flags are errors with a "did you mean".
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace boxcar::cli {

struct FlagSpec {
  std::string name;      // "--file"
  bool takes_value = true;
  bool repeatable = false;
  std::string short_name;  // "-f", optional
};

struct ParsedFlags {
  std::map<std::string, std::vector<std::string>> values;  // name -> values (bool flags: "")
  std::vector<std::string> positional;

  bool has(const std::string& name) const { return values.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;
  std::vector<std::string> all(const std::string& name) const;
};

// Parses `args` (without the program and command names). Accepts "--flag value" and
// "--flag=value"; "--" ends flags. Errors: unknown flag (with did you mean), a missing value,
// a repeated non-repeatable flag, a value given to a boolean flag.
Result<ParsedFlags> parse_flags(const std::vector<std::string>& args,
                                const std::vector<FlagSpec>& specs);

// A whole number from 1 to `max` ("4"), into `out`; false for anything else.
bool parse_count(const std::string& s, long max, size_t& out);

}  // namespace boxcar::cli
