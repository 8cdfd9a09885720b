#include "executors/spec.h"

#include <cerrno>
#include <cmath>
#include <string>

#include "base/size.h"

namespace boxcar::executors {

namespace {

constexpr uint64_t kMinMemory = 4ull << 20;
constexpr uint64_t kMinTmp = 1ull << 20;
constexpr uint64_t kMinPids = 8;
constexpr double kMinCpus = 0.01;
constexpr double kMaxCpus = 1024;
constexpr size_t kMaxNameBytes = 256;

Error invalid(const SandboxSpec& spec, const std::string& what) {
  return Error{"sandbox \"" + spec.name + "\": " + what, EINVAL};
}

bool has_control_char(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

Status validate(const SandboxSpec& spec) {
  // The name reaches messages, cgroup names and the hostname (each executor sanitises it
  // further); a matrix expansion such as "test (cc=gcc, opt=O2)" must pass.
  if (spec.name.empty()) return Error{"sandbox name is empty", EINVAL};
  if (spec.name.size() > kMaxNameBytes) {
    return invalid(spec, "name is longer than " + std::to_string(kMaxNameBytes) + " bytes");
  }
  if (has_control_char(spec.name))
    return Error{"sandbox name contains a control character", EINVAL};

  if (spec.image.empty()) return invalid(spec, "image is empty");
  for (unsigned char c : spec.image) {
    if (c <= 0x20 || c == 0x7f)
      return invalid(spec, "image \"" + spec.image + "\" contains whitespace");
  }

  switch (spec.network) {
    case NetworkMode::job:
    case NetworkMode::none:
    case NetworkMode::host:
      break;
    default:
      return invalid(spec,
                     "unknown network mode " + std::to_string(static_cast<int>(spec.network)));
  }

  if (spec.memory_bytes && *spec.memory_bytes < kMinMemory) {
    return invalid(spec, "memory " + format_size(*spec.memory_bytes) + " is below the minimum of " +
                             format_size(kMinMemory));
  }
  if (spec.cpus) {
    double cpus = *spec.cpus;
    if (!std::isfinite(cpus) || cpus < kMinCpus || cpus > kMaxCpus) {
      return invalid(spec, "cpus " + std::to_string(cpus) + " is outside 0.01..1024");
    }
  }
  if (spec.pids && *spec.pids < kMinPids) {
    return invalid(spec, "pids " + std::to_string(*spec.pids) + " is below the minimum of " +
                             std::to_string(kMinPids));
  }
  if (spec.tmp_bytes < kMinTmp) {
    return invalid(spec, "tmp " + format_size(spec.tmp_bytes) + " is below the minimum of " +
                             format_size(kMinTmp));
  }
  if (spec.shm_bytes < kMinTmp) {
    return invalid(spec, "/dev/shm " + format_size(spec.shm_bytes) + " is below the minimum of " +
                             format_size(kMinTmp));
  }
  return {};
}

}  // namespace boxcar::executors
