#include "cli/flags.h"

#include <cstdlib>

#include "base/suggest.h"

namespace boxcar::cli {

bool parse_count(const std::string& s, long max, size_t& out) {
  char* end = nullptr;
  long n = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != 0 || n < 1 || n > max) return false;
  out = static_cast<size_t>(n);
  return true;
}

std::optional<std::string> ParsedFlags::get(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ParsedFlags::all(const std::string& name) const {
  auto it = values.find(name);
  return it == values.end() ? std::vector<std::string>{} : it->second;
}

Result<ParsedFlags> parse_flags(const std::vector<std::string>& args,
                                const std::vector<FlagSpec>& specs) {
  ParsedFlags out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      out.positional.insert(out.positional.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      out.positional.push_back(arg);
      continue;
    }
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    const FlagSpec* spec = nullptr;
    for (const auto& s : specs) {
      if (s.name == name || (!s.short_name.empty() && s.short_name == name)) spec = &s;
    }
    if (!spec) {
      std::vector<std::string> names;
      for (const auto& s : specs) names.push_back(s.name);
      std::string msg = "unknown flag " + name;
      if (auto m = closest_match(name, names)) msg += " (did you mean " + *m + "?)";
      return Error{msg};
    }
    std::string value;
    if (spec->takes_value) {
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return Error{spec->name + " needs a value"};
      }
    } else if (inline_value) {
      return Error{spec->name + " takes no value"};
    }
    auto& slot = out.values[spec->name];
    if (!slot.empty() && !spec->repeatable) return Error{spec->name + " given more than once"};
    slot.push_back(value);
  }
  return out;
}

}  // namespace boxcar::cli
