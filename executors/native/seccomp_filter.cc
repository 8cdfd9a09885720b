#include "executors/native/seccomp_filter.h"

#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

namespace boxcar::executors::native {

namespace {

constexpr const char* kDenied[] = {
    "unshare", "setns", "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "keyctl", "add_key", "request_key", "bpf",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module", "perf_event_open",
    "clock_settime", "settimeofday", "adjtimex", "clock_adjtime", "reboot", "swapon", "swapoff",
    "acct", "quotactl", "quotactl_fd", "lookup_dcookie", "open_by_handle_at", "name_to_handle_at",
    "fanotify_init", "nfsservctl", "vhangup", "syslog", "uselib", "ustat", "sysfs", "_sysctl",
    "iopl", "ioperm", "create_module", "get_kernel_syms", "query_module",
    // Docker's profile: NUMA policy and page migration only with CAP_SYS_NICE (which steps do
    // not have); move_pages and migrate_pages also act on other processes' memory.
    "get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "mbind", "move_pages", "migrate_pages",
    // Memory even the kernel's direct map does not show: nothing a build needs, and a place to
    // hide from inspection.
    "memfd_secret",
};

constexpr unsigned long kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                             CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, 0x00000080 /*NEWTIME*/};

constexpr int kDeniedFamilies[] = {AF_VSOCK, AF_ALG, AF_KEY, AF_PACKET};

// Personality flags Docker's profile never allows (setarch -R and friends).
constexpr unsigned long kPersonalityFlags[] = {0x0040000 /*ADDR_NO_RANDOMIZE*/, 0x0100000 /*MMAP_PAGE_ZERO*/,
                                               0x0200000 /*ADDR_COMPAT_LAYOUT*/, 0x0400000 /*READ_IMPLIES_EXEC*/};

// Where a file's mode is set, by syscall and argument index. The workspace is an idmapped
// mount: a file the step's root creates belongs to root on the host's disk, so a setuid or
// setgid bit set from inside would make a set-id-root program for anyone on the host who can
// reach the workspace (the sandbox's own view of it is nosuid). These calls fail with EPERM
// when the mode carries S_ISUID or S_ISGID.
struct ModeArg {
  const char* name;
  int nr;  // used when libseccomp does not know the name (fchmodat2 is newer than 2.5.4)
  unsigned arg;
};
constexpr ModeArg kModeArgs[] = {
    {"chmod", -1, 1}, {"fchmod", -1, 1}, {"fchmodat", -1, 2}, {"fchmodat2", 452, 2},
    {"open", -1, 2},  {"openat", -1, 3}, {"creat", -1, 1},    {"mknod", -1, 1},
    {"mknodat", -1, 2},
};

struct CtxDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};

Error seccomp_error(const std::string& what, int rc) {
  return Error{"seccomp: " + what + ": " + std::strerror(-rc), -rc};
}

}  // namespace

std::vector<SeccompRule> seccomp_rules() {
  using Op = SeccompCondition::Op;
  std::vector<SeccompRule> rules;
  for (const char* name : kDenied) rules.push_back({name, -1, EPERM, {}});
  rules.push_back({"clone3", -1, ENOSYS, {}, true});
  for (unsigned long flag : kNamespaceFlags) rules.push_back({"clone", -1, EPERM, {{0, Op::masked_eq, flag, flag}}});
  for (const ModeArg& m : kModeArgs) {
    for (uint64_t bit : {uint64_t{S_ISUID}, uint64_t{S_ISGID}}) {
      rules.push_back({m.name, m.nr, EPERM, {{m.arg, Op::masked_eq, bit, bit}}});
    }
  }
  // openat2 passes its mode inside a struct the filter cannot read: ENOSYS sends callers back
  // to openat (glibc does not use openat2 itself).
  rules.push_back({"openat2", -1, ENOSYS, {}});
  for (int family : kDeniedFamilies) {
    rules.push_back({"socket", -1, EAFNOSUPPORT, {{0, Op::eq, 0, static_cast<uint64_t>(family)}}});
  }
  // The audit subsystem is not namespaced. EPROTONOSUPPORT is what a kernel without audit
  // answers, which libaudit's callers (useradd, sudo, PAM) take as "no audit" and go on.
  rules.push_back({"socket", -1, EPROTONOSUPPORT, {{0, Op::eq, 0, AF_NETLINK}, {2, Op::eq, 0, NETLINK_AUDIT}}});
  for (unsigned long flag : kPersonalityFlags) {
    // 0xffffffff (query) has every bit set; it is compared on the low 32 bits only.
    rules.push_back({"personality", -1, EPERM, {{0, Op::masked_eq, flag | 0x80000000ull, flag}}});
  }
  return rules;
}

Result<SeccompProgram> build_seccomp_program() {
  std::unique_ptr<void, CtxDeleter> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return Error{"seccomp: seccomp_init failed", ENOMEM};
  int rc;
  // Syscalls of another ABI (i386 via int 0x80, x32) are not in this filter's architecture
  // list, so libseccomp sends them to this action.
  if ((rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0) {
    return seccomp_error("bad-arch action", rc);
  }
  // A binary tree of syscall numbers instead of a linear list: fewer instructions per call.
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
  for (const SeccompRule& rule : seccomp_rules()) {
    if (rule.per_command) continue;  // command_filter.h
    int nr = seccomp_syscall_resolve_name(rule.name.c_str());
    if (nr == __NR_SCMP_ERROR) nr = rule.nr;
    if (nr < 0) continue;  // not on this architecture
    std::vector<scmp_arg_cmp> cmp;
    for (const SeccompCondition& c : rule.conditions) {
      if (c.op == SeccompCondition::Op::eq) cmp.push_back({c.index, SCMP_CMP_EQ, c.value, 0});
      else cmp.push_back({c.index, SCMP_CMP_MASKED_EQ, c.mask, c.value});
    }
    rc = seccomp_rule_add_array(ctx.get(), SCMP_ACT_ERRNO(static_cast<uint32_t>(rule.err)), nr,
                                static_cast<unsigned>(cmp.size()), cmp.empty() ? nullptr : cmp.data());
    if (rc < 0) return seccomp_error(rule.name, rc);
  }

  int memfd = ::memfd_create("boxcar-seccomp", MFD_CLOEXEC);
  if (memfd < 0) return Error{std::string("seccomp: memfd: ") + std::strerror(errno), errno};
  rc = seccomp_export_bpf(ctx.get(), memfd);
  if (rc < 0) {
    ::close(memfd);
    return seccomp_error("export", rc);
  }
  off_t size = ::lseek(memfd, 0, SEEK_END);
  SeccompProgram program;
  program.code.resize(static_cast<size_t>(size) / sizeof(sock_filter));
  ssize_t n = ::pread(memfd, program.code.data(), program.code.size() * sizeof(sock_filter), 0);
  ::close(memfd);
  if (n != static_cast<ssize_t>(program.code.size() * sizeof(sock_filter)) || program.code.empty()) {
    return Error{"seccomp: reading the exported filter failed", EIO};
  }
  return program;
}

Failure apply_seccomp(const SeccompProgram& program) {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail("no_new_privs");
  sock_fprog prog{static_cast<unsigned short>(program.code.size()),
                  const_cast<sock_filter*>(program.code.data())};
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) return fail("seccomp load");
  return ok();
}

}  // namespace boxcar::executors::native
