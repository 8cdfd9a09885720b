#include "sandboxes/workspace_size.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <utility>

namespace boxcar::sandboxes {

namespace {

struct Walk {
  dev_t dev = 0;
  uint64_t bytes = 0;
  uint64_t entries = 0;
  std::set<std::pair<dev_t, ino_t>> linked;  // files with more than one link, counted once
};

void walk(int dir_fd, Walk& w, int depth) {
  DIR* d = ::fdopendir(dir_fd);  // takes dir_fd
  if (d == nullptr) {
    ::close(dir_fd);
    return;
  }
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (++w.entries > kWorkspaceSizeMaxEntries) break;
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (st.st_dev != w.dev) continue;  // a mount inside: not the workspace's disk
    if (S_ISREG(st.st_mode) && st.st_nlink > 1 && !w.linked.emplace(st.st_dev, st.st_ino).second) continue;
    w.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    if (S_ISDIR(st.st_mode) && depth < 256) {
      int sub = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) walk(sub, w, depth + 1);
    }
  }
  ::closedir(d);
}

}  // namespace

uint64_t workspace_size(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return 0;
  }
  Walk w;
  w.dev = st.st_dev;
  walk(fd, w, 0);
  return w.bytes;
}

}  // namespace boxcar::sandboxes
