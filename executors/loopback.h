// Connecting to a port on the loopback of a network namespace: how the agent reaches a service
// inside a sandbox without any bridge, veth or iptables.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::executors {

// Connects to 127.0.0.1:`port`. With `netns` (a namespace fd, or a pidfd of a process in it) the
// socket is created inside that network namespace: the calling thread enters it for the
// socket() call only and returns to its own. The socket is non-blocking and the connection may
// still be in progress: the caller waits for the fd to become writable, then reads SO_ERROR.
// Usually loopback answers at once, but when the server's accept queue is full the kernel drops
// the SYN and retries it only a second later, which must not stall the caller's thread.
// An Error when connect() fails at once (ECONNREFUSED: nothing listens).
Result<unique_fd> connect_loopback(uint16_t port, int netns = -1);

}  // namespace boxcar::executors
