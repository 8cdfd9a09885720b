#include "sandboxes/sandbox_path.h"

namespace boxcar::sandboxes {

Result<std::string> sandbox_path(std::string_view path, std::string_view cwd) {
  if (path.empty()) return Error{"the path is empty: name a file, like /workspace/app.py"};
  if (path.find('\0') != std::string_view::npos) return Error{"the path holds a NUL byte"};
  std::string full = path[0] == '/' ? std::string(path) : std::string(cwd) + "/" + std::string(path);
  if (full.size() > kMaxSandboxPath) {
    return Error{"the path is " + std::to_string(full.size()) + " bytes long; at most 4096 are allowed"};
  }
  if (full.find("//") != std::string::npos) return Error{"the path holds \"//\": write one slash between names"};
  size_t start = 1;
  while (start <= full.size()) {
    size_t end = full.find('/', start);
    if (end == std::string::npos) end = full.size();
    std::string_view seg(full.data() + start, end - start);
    if (seg == "." || seg == "..") {
      return Error{"the path holds a \"" + std::string(seg) + "\" segment: name the file without it"};
    }
    start = end + 1;
  }
  // "/workspace/" names /workspace: a trailing slash is dropped.
  if (full.size() > 1 && full.back() == '/') full.pop_back();
  return full;
}

}  // namespace boxcar::sandboxes
