// Seccomp: a filter modeled on Docker's default profile, built once with libseccomp in the
// agent and loaded (with no_new_privs) into each sandbox's init, whose commands inherit it.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "executors/native/facility.h"

namespace boxcar::executors::native {

struct SeccompProgram {
  std::vector<sock_filter> code;
};

// Default allow; EPERM for namespaces (unshare, setns, clone with CLONE_NEW*), mounts,
// keyrings, bpf, io_uring, userfaultfd, kexec, modules, perf, clock setting, reboot, swap,
// acct, quotactl, NUMA policy and page migration (mbind, get/set_mempolicy, move_pages,
// migrate_pages), memfd_secret; AF_VSOCK/AF_ALG/AF_KEY/AF_PACKET sockets and NETLINK_AUDIT
// sockets fail; ENOSYS for clone3 (libc falls back to clone, whose flags the filter can see);
// other ABIs (i386, x32) kill the process. Rules marked per_command (clone3) are left out: init
// needs clone3 for CLONE_INTO_CGROUP, and each process it forks adds them (command_filter.h).
Result<SeccompProgram> build_seccomp_program();

// The filter above as data, one rule per (syscall, condition set): the same table feeds
// libseccomp here and the OCI runtime's seccomp profile (executors/oci), so both executors
// deny the same calls. Conditions of one rule must all hold (AND).
struct SeccompCondition {
  enum class Op { eq, masked_eq };  // masked_eq: (arg & mask) == value
  unsigned index = 0;
  Op op = Op::eq;
  uint64_t mask = 0;   // masked_eq only
  uint64_t value = 0;
};
struct SeccompRule {
  std::string name;
  int nr = -1;  // used when libseccomp does not know the name (newer than 2.5.4)
  int err = 0;  // the errno the call fails with
  std::vector<SeccompCondition> conditions;
  // Native: not in init's filter but in the one every process init forks stacks on it before
  // running anything (command_filter.h). The OCI profile applies every rule to everything.
  bool per_command = false;
};
std::vector<SeccompRule> seccomp_rules();
// Sets no_new_privs and loads `program` into the calling (single-threaded) process.
Failure apply_seccomp(const SeccompProgram& program);

}  // namespace boxcar::executors::native
