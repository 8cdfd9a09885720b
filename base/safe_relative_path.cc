#include "base/safe_relative_path.h"

namespace boxcar {

bool safe_relative_path(std::string_view path) {
  if (path.empty() || path.size() > kMaxRelativePathBytes || path.front() == '/') return false;
  if (path.find('\0') != std::string_view::npos) return false;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view seg = path.substr(i, j - i);
    if (seg.empty() || seg == "." || seg == "..") return false;
    i = j + 1;
  }
  return true;
}

}  // namespace boxcar
