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

// A directory of the sandbox made of layers (overlayfs), so that steps running at once never see
// each other's writes: the step writes to a fresh layer of its own, over read-only lower layers
// (earlier steps' layers, restored caches, the job's checkout). The layers are the engine's host
// directories (agent/workspace_layers.h); the executor idmaps each (as it does the workspace)
// and mounts the overlay inside the sandbox's user namespace with `userxattr`, so a layer on disk
// holds whiteouts as 0/0 character devices and opaque directories as user.overlay.opaque=y, and
// the host sees the files with the owners the workspace's files get.
struct LayeredDir {
  std::string target = "/workspace";  // absolute path inside the sandbox
  // An empty host directory of the engine's, on the same filesystem for the whole job: the
  // executor makes upper/ (the step's writes, kept after the sandbox ends) and work/ in it.
  std::filesystem::path layer;
  // Host directories, highest first; for /workspace the job's checkout is the last.
  std::vector<std::filesystem::path> lowers;
};


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
  // Empty: /workspace is the job's checkout itself, shared read-write by the job's steps (and
  // always so on the host executor, which has no mount namespace: it fails a start that asks
  // for layers rather than share silently). Otherwise one entry with target "/workspace" and
  // maybe more (a cache under the step's home).
  std::vector<LayeredDir> layered;
};

// Checks the spec as data: limits in range (memory >= 4 MiB, 0.01 <= cpus <= 1024,
// pids >= 8, tmp and shm >= 1 MiB), a sane name, a known network mode. No side effects.
Status validate(const SandboxSpec& spec);

}  // namespace boxcar::executors
