// Bundle: the OCI runtime config (config.json) of one sandbox, made from data only, so the
// mapping from a SandboxSpec to what runc is told can be read and tested without runc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "executors/spec.h"

namespace boxcar::executors::oci {

struct BundleMount {
  std::string destination;  // inside the container
  std::string type;         // "bind", "tmpfs", "proc", ...
  std::string source;
  std::vector<std::string> options;
};

struct BundleConfig {
  std::string root;                  // the root filesystem on the host
  bool root_readonly = true;         // image "host": read-only; an image's overlay: writable
  std::vector<std::string> system_dirs;  // image "host": the host dirs bound read-only at themselves
  std::string workspace;             // host path of the sandbox's idmapped workspace mount
  // The step's layered directories (SandboxSpec::layered) as overlay mounts, and the read-only
  // .git binds over them; when one is /workspace, `workspace` is not bound there.
  std::vector<BundleMount> layered_mounts;
  bool layered_workspace = false;
  std::string init_path;             // boxcar-init on the host, bound read-only at kInitInside
  uint64_t caps_mask = 0;            // the capabilities commands keep (CapSet::mask)
  std::vector<std::string> cap_names;  // what init holds, as "CAP_CHOWN", ...: every one
  std::string hostname;
  uid_t id_base = 100000, id_count = 65536;
  NetworkMode network = NetworkMode::job;
  std::string netns_path;            // network = job: the job's namespace
  // Image "host": the job's resolv.conf on the host, bound read-only over /etc/resolv.conf
  // (native/resolv_conf.h); "" for the root's own. An image's is written into its /etc.
  std::string resolv_conf;
  uint32_t net_class = 0;            // linux.resources.network.classID; 0: none
  uint64_t tmp_bytes = 1ull << 30, shm_bytes = 64ull << 20;
  std::optional<uint64_t> memory_bytes, pids;
  std::optional<double> cpus;
  std::string cgroups_path;          // relative: below the runtime's (= the agent's) cgroup
  std::string seccomp_json;          // the "seccomp" object (seccomp_profile.h)
};

// Where boxcar-init appears inside the container.
constexpr const char* kInitInside = "/.boxcar-init";

// config.json's text: process = boxcar-init --caps=HEX with the control channel on fd 3
// (passed with `runc run --preserve-fds 1`); user, pid, mount, ipc, uts and cgroup
// namespaces, the network one by path (or a new one for network = none, none at all for host);
// /proc with Docker's masked and read-only paths, a minimal /dev, /dev/shm and /tmp tmpfs,
// /workspace; resources; seccomp; no_new_privs.
std::string make_config_json(const BundleConfig& config);

}  // namespace boxcar::executors::oci
