// Seccomp profile: the native executor's filter (native::seccomp_rules) in the OCI runtime
// spec's form, so a container run by runc denies exactly what a native sandbox denies.
#pragma once

#include <string>

namespace boxcar::executors::oci {

// The JSON of config.json's linux.seccomp: default allow, each native rule as an errno action
// with its argument conditions. Syscalls libseccomp 2.5.4 does not name (fchmodat2) cannot be
// expressed by name and are left out: runc would skip them anyway (see README "Limits").
std::string seccomp_profile_json();

}  // namespace boxcar::executors::oci
