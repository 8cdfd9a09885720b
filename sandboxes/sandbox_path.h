// The sandbox API's path rules (SANDBOXES.md §2.0): a path a request names inside a sandbox is
// absolute, or relative to the default cwd (/workspace); it is refused (400 bad_path) when empty,
// holding NUL, a "." or ".." segment or "//", or longer than 4096 bytes. Checked before any
// file helper sees it; the helper still resolves it only inside the sandbox (path_walk.h).
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace boxcar::sandboxes {

inline constexpr size_t kMaxSandboxPath = 4096;
inline constexpr const char* kDefaultCwd = "/workspace";

// The absolute path `path` names, or an Error saying what is wrong and how to fix it (the
// caller answers 400 bad_path, naming its field).
Result<std::string> sandbox_path(std::string_view path, std::string_view cwd = kDefaultCwd);

}  // namespace boxcar::sandboxes
