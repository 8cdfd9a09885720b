// SandboxSpec: what one step's sandbox looks like, as data, validated before anything is created.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace boxcar::executors {

enum class NetworkMode { job, none, host };

struct SandboxSpec {
  std::string name;              // the step's name, for messages and the hostname
  std::string image = "host";    // "host" or an OCI image reference
  NetworkMode network = NetworkMode::job;
  std::optional<uint64_t> memory_bytes;
  std::optional<double> cpus;
  std::optional<uint64_t> pids;
  uint64_t tmp_bytes = 1ull << 30;  // size of the /tmp tmpfs
};

// Checks the spec as data: limits in range (memory >= 4 MiB, 0.01 <= cpus <= 1024,
// pids >= 8, tmp >= 1 MiB), a sane name, a known network mode. No side effects.
Status validate(const SandboxSpec& spec);

}  // namespace boxcar::executors
