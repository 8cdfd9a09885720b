// SandboxSpec: what one step's sandbox looks like, as data, validated before anything is created.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace boxcar::executors {

enum class NetworkMode { job, none, host };

struct SandboxSpec {
  std::string name;              // the step's name, for messages and the hostname
  std::string image = "host";    // "host" or an OCI image reference (for names and messages)
  // For an image: its unpacked layer directories, lowest first (images::PulledImage::layers).
  // The root is these layers composed with overlayfs under a fresh writable layer of the
  // sandbox's own, removed with it. Empty for image = "host".
  std::vector<std::filesystem::path> layers;
  NetworkMode network = NetworkMode::job;
  // The net_cls class id every process of the sandbox carries (network/job_network.h: the job
  // network's rules tell steps apart by it). 0: none. An executor that cannot give it fails the
  // start (setup_error) rather than run the step outside its egress policy.
  uint32_t net_class = 0;
  std::optional<uint64_t> memory_bytes;
  std::optional<double> cpus;
  std::optional<uint64_t> pids;
  uint64_t tmp_bytes = 1ull << 30;  // size of the /tmp tmpfs
  // Size of the /dev/shm tmpfs: 64 MiB, as Docker gives. Both tmpfs are charged to the step's
  // memory cgroup (a page belongs to the cgroup of the process that wrote it), so what a step
  // keeps in /tmp and /dev/shm counts toward memory_bytes.
  uint64_t shm_bytes = 64ull << 20;
};

// Checks the spec as data: limits in range (memory >= 4 MiB, 0.01 <= cpus <= 1024,
// pids >= 8, tmp and shm >= 1 MiB), a sane name, a known network mode. No side effects.
Status validate(const SandboxSpec& spec);

}  // namespace boxcar::executors
