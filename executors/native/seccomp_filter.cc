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
  auto add = [&](uint32_t action, const char* name, unsigned count, const scmp_arg_cmp* cmp) -> int {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return 0;  // not on this architecture
    return seccomp_rule_add_array(ctx.get(), action, nr, count, cmp);
  };
  for (const char* name : kDenied) {
    if ((rc = add(SCMP_ACT_ERRNO(EPERM), name, 0, nullptr)) < 0) return seccomp_error(name, rc);
  }
  if ((rc = add(SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, nullptr)) < 0) return seccomp_error("clone3", rc);
  for (unsigned long flag : kNamespaceFlags) {
    scmp_arg_cmp cmp = SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag);
    if ((rc = add(SCMP_ACT_ERRNO(EPERM), "clone", 1, &cmp)) < 0) return seccomp_error("clone", rc);
  }
  for (const ModeArg& m : kModeArgs) {
    int nr = seccomp_syscall_resolve_name(m.name);
    if (nr == __NR_SCMP_ERROR) nr = m.nr;
    if (nr < 0) continue;
    for (scmp_datum_t bit : {scmp_datum_t{S_ISUID}, scmp_datum_t{S_ISGID}}) {
      scmp_arg_cmp cmp{m.arg, SCMP_CMP_MASKED_EQ, bit, bit};
      if ((rc = seccomp_rule_add_array(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 1, &cmp)) < 0) {
        return seccomp_error(m.name, rc);
      }
    }
  }
  // openat2 passes its mode inside a struct the filter cannot read: ENOSYS sends callers back
  // to openat (glibc does not use openat2 itself).
  if ((rc = add(SCMP_ACT_ERRNO(ENOSYS), "openat2", 0, nullptr)) < 0) return seccomp_error("openat2", rc);
  for (int family : kDeniedFamilies) {
    scmp_arg_cmp cmp = SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family));
    if ((rc = add(SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, &cmp)) < 0) return seccomp_error("socket", rc);
  }
  // The audit subsystem is not namespaced. EPROTONOSUPPORT is what a kernel without audit
  // answers, which libaudit's callers (useradd, sudo, PAM) take as "no audit" and go on.
  {
    scmp_arg_cmp cmp[] = {SCMP_A0(SCMP_CMP_EQ, AF_NETLINK), SCMP_A2(SCMP_CMP_EQ, NETLINK_AUDIT)};
    if ((rc = add(SCMP_ACT_ERRNO(EPROTONOSUPPORT), "socket", 2, cmp)) < 0) return seccomp_error("socket", rc);
  }
  for (unsigned long flag : kPersonalityFlags) {
    // 0xffffffff (query) has every bit set; it is compared on the low 32 bits only.
    scmp_arg_cmp bit = SCMP_A0(SCMP_CMP_MASKED_EQ, flag | 0x80000000ull, flag);
    if ((rc = add(SCMP_ACT_ERRNO(EPERM), "personality", 1, &bit)) < 0) return seccomp_error("personality", rc);
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
