#include "cli/step_limit_flags.h"

#include <cmath>
#include <cstdlib>

#include "base/duration.h"
#include "base/size.h"

namespace boxcar::cli {

namespace {

constexpr uint64_t kMinMemory = 4ull << 20;  // as executors::validate() wants them
constexpr uint64_t kMinTmp = 1ull << 20;
constexpr uint64_t kMinPids = 8;
constexpr uint64_t kMaxPids = 4'194'304;  // the kernel's pid_max ceiling
constexpr double kMinCpus = 0.01;
constexpr double kMaxCpus = 1024;

Error bad(const std::string& flag, const std::string& what, const std::string& value) {
  return Error{flag + " must be " + what + ", not \"" + value + "\""};
}

// A size flag into `out`; false when absent.
Result<bool> size_flag(const ParsedFlags& flags, const std::string& flag, uint64_t min, uint64_t& out) {
  auto v = flags.get(flag);
  if (!v) return false;
  auto n = parse_size(*v);
  if (!n || *n < min) return bad(flag, "a size of at least " + format_size(min) + " (like 4GiB)", *v);
  out = *n;
  return true;
}

Result<bool> pids_flag(const ParsedFlags& flags, const std::string& flag, uint64_t& out) {
  auto v = flags.get(flag);
  if (!v) return false;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v->c_str(), &end, 10);
  if (v->empty() || *end != 0 || (*v)[0] == '-' || n < kMinPids || n > kMaxPids) {
    return bad(flag, "a number from " + std::to_string(kMinPids) + " to " + std::to_string(kMaxPids), *v);
  }
  out = n;
  return true;
}

Result<bool> cpus_flag(const ParsedFlags& flags, const std::string& flag, double& out) {
  auto v = flags.get(flag);
  if (!v) return false;
  char* end = nullptr;
  double n = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != 0 || !std::isfinite(n) || n < kMinCpus || n > kMaxCpus) {
    return bad(flag, "a number of CPUs from 0.01 to 1024 (like 2 or 0.5)", *v);
  }
  out = n;
  return true;
}

// Pairs a default with its ceiling: an explicit default over the ceiling is an error; the
// built-in default over a lowered ceiling follows it down.
template <typename T, typename Show>
Status pair(bool default_given, T& value, const T& ceiling, const std::string& name, Show show) {
  if (value <= ceiling) return {};
  if (default_given) {
    return Error{"--default-" + name + " " + show(value) + " is over --max-" + name + " " + show(ceiling) +
                 ": lower it or raise --max-" + name};
  }
  value = ceiling;
  return {};
}

}  // namespace

std::vector<FlagSpec> step_limit_flag_specs() {
  std::vector<FlagSpec> specs;
  for (const char* name : {"--default-memory", "--default-pids", "--default-cpus", "--default-tmp", "--max-memory",
                           "--max-pids", "--max-cpus", "--max-tmp", "--max-preview-ttl", "--max-image-write"}) {
    specs.push_back({name, true, false, ""});
  }
  return specs;
}

std::vector<FlagSpec> with_step_limit_flags(std::vector<FlagSpec> specs) {
  for (auto& spec : step_limit_flag_specs()) specs.push_back(std::move(spec));
  return specs;
}

Result<agent::StepLimits> read_step_limits(const ParsedFlags& flags) {
  agent::StepLimits l;
  auto memory = size_flag(flags, "--default-memory", kMinMemory, l.default_memory);
  auto tmp = size_flag(flags, "--default-tmp", kMinTmp, l.default_tmp);
  auto pids = pids_flag(flags, "--default-pids", l.default_pids);
  auto cpus = cpus_flag(flags, "--default-cpus", l.default_cpus);
  for (const auto* r : {&memory, &tmp, &pids, &cpus}) {
    if (!r->ok()) return r->error();
  }
  for (auto r : {size_flag(flags, "--max-memory", kMinMemory, l.max_memory),
                 size_flag(flags, "--max-tmp", kMinTmp, l.max_tmp), pids_flag(flags, "--max-pids", l.max_pids),
                 cpus_flag(flags, "--max-cpus", l.max_cpus)}) {
    if (!r.ok()) return r.error();
  }
  if (auto v = flags.get("--max-preview-ttl")) {
    auto d = parse_duration(*v);
    if (!d || *d < Millis(1000)) return bad("--max-preview-ttl", "a duration of at least 1s (like 2h)", *v);
    l.max_preview_ttl = *d;
  }
  auto size = [](uint64_t v) { return format_size(v); };
  auto count = [](uint64_t v) { return std::to_string(v); };
  for (Status st : {pair(*memory, l.default_memory, l.max_memory, "memory", size),
                    pair(*tmp, l.default_tmp, l.max_tmp, "tmp", size),
                    pair(*pids, l.default_pids, l.max_pids, "pids", count),
                    pair(*cpus, l.default_cpus, l.max_cpus, "cpus", agent::format_cpus)}) {
    if (!st.ok()) return st.error();
  }
  return l;
}

Result<std::optional<uint64_t>> read_max_image_write(const ParsedFlags& flags) {
  constexpr uint64_t kMinImageWrite = 16ull << 20;
  auto v = flags.get("--max-image-write");
  if (!v) return std::optional<uint64_t>{};
  auto n = parse_size(*v);
  if (!n || (*n != 0 && *n < kMinImageWrite)) {
    return bad("--max-image-write", "a size of at least " + format_size(kMinImageWrite) + " (like 10GiB), or 0 for no limit",
               *v);
  }
  return std::optional<uint64_t>{*n};
}

}  // namespace boxcar::cli
