#include "base/private_dir.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace boxcar {

Status make_private_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error{"cannot create " + dir.string() + ": " + std::strerror(errno), errno};
  }
  // lstat: a link planted where the directory should be is not a directory.
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error{"cannot create " + dir.string() + ": not a directory"};
  }
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), st.st_mode & 0700) != 0) {
    return Error{"cannot chmod 0700 " + dir.string() + ": " + std::strerror(errno), errno};
  }
  return {};
}

}  // namespace boxcar
