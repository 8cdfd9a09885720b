// What the kernel lets execve() pass to a program: shared by the checks that refuse, up front
// and with a clear message, env values a step could never be started with.
#pragma once

#include <cstddef>

namespace boxcar {

// MAX_ARG_STRLEN (32 pages): execve() fails with E2BIG on a longer argument or environment
// string, its terminating NUL included.
inline constexpr size_t kMaxEnvStringBytes = 128 << 10;

// The longest "NAME=value" a process can be given.
inline constexpr size_t kMaxEnvVarBytes = kMaxEnvStringBytes - 1;

}  // namespace boxcar
