#include "cli/agent_limit_flags.h"

#include <cstdlib>

#include "base/size.h"

namespace boxcar::cli {

namespace {

// A count flag: digits only, `min` <= n <= `max` (or 0 when `zero_ok`).
std::optional<uint64_t> count(const std::string& v, uint64_t min, uint64_t max, bool zero_ok) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 12) return std::nullopt;
  uint64_t n = std::strtoull(v.c_str(), nullptr, 10);
  if ((n == 0 && zero_ok) || (n >= min && n <= max)) return n;
  return std::nullopt;
}

}  // namespace

std::vector<FlagSpec> agent_limit_flag_specs() {
  return {{"--max-workspace", true, false, ""},
          {"--max-workspace-inodes", true, false, ""},
          {"--max-previews", true, false, ""}};
}

Result<AgentLimits> read_agent_limits(const ParsedFlags& flags) {
  AgentLimits limits;
  if (auto v = flags.get("--max-workspace")) {
    auto n = parse_size(*v);
    if (!n || (*n != 0 && *n < (1ull << 20))) {
      return Error{"--max-workspace must be a size of at least 1MiB (like 10GiB), or 0 for no limit, not \"" + *v +
                   "\""};
    }
    limits.workspace.bytes = *n;
  }
  if (auto v = flags.get("--max-workspace-inodes")) {
    auto n = count(*v, 100, 1'000'000'000'000ull, true);
    if (!n) {
      return Error{"--max-workspace-inodes must be a number of at least 100 (like 1000000), or 0 for no limit, not \"" +
                   *v + "\""};
    }
    limits.workspace.inodes = *n;
  }
  if (auto v = flags.get("--max-previews")) {
    auto n = count(*v, 1, 1024, false);
    if (!n) return Error{"--max-previews must be a number from 1 to 1024, not \"" + *v + "\""};
    limits.max_previews = static_cast<size_t>(*n);
  }
  return limits;
}

}  // namespace boxcar::cli
