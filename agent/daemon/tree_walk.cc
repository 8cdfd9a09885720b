#include "agent/daemon/tree_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace boxcar::agent {

namespace {

// One directory on the way down: who it is, its name in its parent, and the subdirectories
// still to visit (read once, when it was listed, so no directory is ever listed twice).
struct Frame {
  dev_t dev = 0;
  ino_t ino = 0;
  std::string name;
  std::vector<std::string> pending;
};

unique_fd open_dir(int at, const char* name) {
  return unique_fd(::openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

// Lists the directory `fd`: visits every entry; subdirectories of the same filesystem go to
// `frame.pending`. False when the visitor stopped.
bool list(int fd, dev_t dev, Frame& frame, const TreeVisitor& v, bool with_stats) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return true;
  DIR* d = ::fdopendir(copy);
  if (!d) {
    ::close(copy);
    return true;
  }
  bool go_on = true;
  while (dirent* e = ::readdir(d)) {
    const char* name = e->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    struct stat st {};
    if (with_stats || e->d_type == DT_UNKNOWN) {
      if (::fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
    } else {
      st.st_mode = e->d_type == DT_DIR ? S_IFDIR : e->d_type == DT_LNK ? S_IFLNK : S_IFREG;
      st.st_dev = dev;
    }
    if (v.entry && !v.entry(fd, name, st)) {
      go_on = false;
      break;
    }
    if (S_ISDIR(st.st_mode) && st.st_dev == dev) frame.pending.emplace_back(name);
  }
  ::closedir(d);
  return go_on;
}

}  // namespace

Status walk_tree(const std::filesystem::path& root, const TreeVisitor& v, bool with_stats) {
  unique_fd fd = open_dir(AT_FDCWD, root.c_str());
  if (!fd) {
    if (errno == ENOENT) return {};
    return Error{"cannot open " + root.string() + ": " + std::strerror(errno), errno};
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error{"cannot stat " + root.string(), errno};
  const dev_t dev = st.st_dev;
  std::vector<Frame> path;
  path.push_back(Frame{st.st_dev, st.st_ino, {}, {}});
  if (!list(fd.get(), dev, path.back(), v, with_stats)) return Error{"stopped", ECANCELED};
  for (;;) {
    Frame& here = path.back();
    if (!here.pending.empty()) {
      std::string name = std::move(here.pending.back());
      here.pending.pop_back();
      unique_fd child = open_dir(fd.get(), name.c_str());
      if (!child || ::fstat(child.get(), &st) != 0 || st.st_dev != dev) continue;  // gone or replaced
      fd = std::move(child);
      path.push_back(Frame{st.st_dev, st.st_ino, std::move(name), {}});
      if (!list(fd.get(), dev, path.back(), v, with_stats)) return Error{"stopped", ECANCELED};
      continue;
    }
    if (path.size() == 1) return {};
    unique_fd up = open_dir(fd.get(), "..");
    const Frame& parent = path[path.size() - 2];
    if (!up || ::fstat(up.get(), &st) != 0 || st.st_dev != parent.dev || st.st_ino != parent.ino) {
      return Error{"the tree under " + root.string() + " changed while it was walked", ESTALE};
    }
    fd = std::move(up);
    std::string name = std::move(path.back().name);
    path.pop_back();
    if (v.left) v.left(fd.get(), name.c_str());
  }
}

}  // namespace boxcar::agent
