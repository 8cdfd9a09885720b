#include "cli/pipeline_limit_flags.h"

#include <charconv>
#include <string>

#include "base/size.h"

namespace boxcar::cli {
namespace {

Result<uint64_t> count(const std::string& flag, const std::string& text, uint64_t max) {
  uint64_t n = 0;
  auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (err != std::errc() || end != text.data() + text.size() || n < 1 || n > max) {
    return Error{flag + " must be a number from 1 to " + std::to_string(max) + ", not \"" + text + "\""};
  }
  return n;
}

Result<uint64_t> size(const std::string& flag, const std::string& text, uint64_t max) {
  auto n = parse_size(text);
  if (!n || *n < 1024 || *n > max) {
    return Error{flag + " must be a size from 1KiB to " + format_size(max) + " (like 16MiB), not \"" +
                 text + "\""};
  }
  return *n;
}

}  // namespace

std::vector<FlagSpec> pipeline_limit_flag_specs() {
  return {{"--max-pipeline-steps", true, false, ""},
          {"--max-pipeline-bytes", true, false, ""},
          {"--max-pipeline-depth", true, false, ""},
          {"--max-pipeline-file", true, false, ""}};
}

Status read_pipeline_limit_flags(const ParsedFlags& flags, pipeline::Limits& limits) {
  if (auto v = flags.get("--max-pipeline-steps")) {
    auto n = count("--max-pipeline-steps", *v, 1'000'000);
    if (!n) return n.error();
    limits.expanded_steps = static_cast<size_t>(*n);
  }
  if (auto v = flags.get("--max-pipeline-bytes")) {
    auto n = size("--max-pipeline-bytes", *v, uint64_t{16} << 30);
    if (!n) return n.error();
    limits.expanded_bytes = *n;
  }
  // Past the default, only the parser's child process stands between a deep file and a
  // stack overflow: it fails that job, nothing else.
  if (auto v = flags.get("--max-pipeline-depth")) {
    auto n = count("--max-pipeline-depth", *v, 1'000'000);
    if (!n) return n.error();
    limits.depth = static_cast<int>(*n);
  }
  if (auto v = flags.get("--max-pipeline-file")) {
    auto n = size("--max-pipeline-file", *v, uint64_t{64} << 20);
    if (!n) return n.error();
    limits.file_bytes = *n;
  }
  return {};
}

}  // namespace boxcar::cli
