// Seccomp profile: the native executor's filter (native::seccomp_rules) in the OCI runtime
// spec's form, so a container run by runc denies exactly what a native sandbox denies.
#pragma once

#include <string>

#include "base/result.h"

namespace boxcar::executors::oci {

// A syscall's number on x86_64 by name, __NR_SCMP_ERROR (negative) when unknown: what the
// runtime's libseccomp will make of each name in the profile.
using SyscallResolver = int (*)(const char* name);

// The host's libseccomp (seccomp_syscall_resolve_name); runc as Debian ships it links the same.
int libseccomp_resolve(const char* name);

// The JSON of config.json's linux.seccomp: default allow, each native rule as an errno action
// with its argument conditions. An OCI profile names syscalls, it cannot give numbers, and runc
// silently skips a name its libseccomp does not know: so a rule `resolve` cannot name although
// native filters it by its fallback number (SeccompRule::nr, e.g. fchmodat2 on a libseccomp
// older than 2.5.5) is an Error naming the syscall, and the executor refuses to start. A rule
// with no number at all is not on this architecture and is left out, as native leaves it out.
Result<std::string> seccomp_profile_json(SyscallResolver resolve = libseccomp_resolve);

}  // namespace boxcar::executors::oci
