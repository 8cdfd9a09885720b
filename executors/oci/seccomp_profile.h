// Seccomp profile: the native executor's filter (native::seccomp_rules) in the OCI runtime
// spec's form, so a container run by runc denies exactly what a native sandbox denies.
#pragma once

#include <string>

namespace boxcar::executors::oci {

// The JSON of config.json's linux.seccomp: default allow, each native rule as an errno action
// with its argument conditions. A syscall the host's libseccomp cannot name cannot be written
// in an OCI profile and is left out (runc would skip it anyway); Debian 12's libseccomp names
// every one of the native rules, fchmodat2 included.
std::string seccomp_profile_json();

}  // namespace boxcar::executors::oci
