// A directory only its owner can enter: where an agent keeps workspaces, mirrors and artifacts.
#pragma once

#include <filesystem>

#include "base/result.h"

namespace boxcar {

// Creates `dir` (and its parents) with mode 0700, or narrows an existing directory to 0700.
// An Error when it cannot be made or is not a directory.
Status make_private_dir(const std::filesystem::path& dir);

}  // namespace boxcar
