// PrivateHostsFile (tests only): the test process's own /etc/hosts. The first use moves the
// process into a mount namespace of its own (before any thread starts: a mount namespace is per
// thread, and later threads inherit the caller's) and bind-mounts a file there over /etc/hosts,
// so names the test writes resolve through the machine's real resolution (c-ares, getaddrinfo)
// and nothing outside the process sees them.
#pragma once

#include <string>

#include "base/result.h"

namespace boxcar::testing {

// Replaces the process's /etc/hosts with `content` (written in place: the bind mount stays).
// Call it from the test's main thread before the code under test starts threads.
Status set_private_hosts(const std::string& content);

}  // namespace boxcar::testing
