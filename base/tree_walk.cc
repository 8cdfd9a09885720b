#include "base/tree_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace boxcar {

namespace {

// One directory on the way down: who it is, its name in its parent, and the subdirectories
// still to visit (read once, when it was listed, so no directory is ever listed twice).
struct Frame {
  dev_t dev = 0;
  ino_t ino = 0;
  std::string name;
  std::vector<std::string> pending;
};

// The id of the mount `fd` is on; 0 where the kernel cannot tell (before 5.8), which leaves the
// device comparison alone to stop the walk.
uint64_t mount_id(int fd) {
  struct statx stx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) != 0 || !(stx.stx_mask & STATX_MNT_ID)) return 0;
  return stx.stx_mnt_id;
}

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
  const uint64_t mnt = mount_id(fd.get());
  std::vector<Frame> path;
  path.push_back(Frame{st.st_dev, st.st_ino, {}, {}});
  if (!list(fd.get(), dev, path.back(), v, with_stats)) return Error{"stopped", ECANCELED};
  for (;;) {
    Frame& here = path.back();
    if (!here.pending.empty()) {
      std::string name = std::move(here.pending.back());
      here.pending.pop_back();
      unique_fd child = open_dir(fd.get(), name.c_str());
      // Gone, replaced, or a mount point: a bind of the same filesystem has the same device.
      if (!child || ::fstat(child.get(), &st) != 0 || st.st_dev != dev || mount_id(child.get()) != mnt) continue;
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

bool remove_tree(const std::filesystem::path& tree, const std::atomic<bool>& stop) {
  struct stat st {};
  if (::lstat(tree.c_str(), &st) != 0) return errno == ENOENT;
  if (!S_ISDIR(st.st_mode)) return ::unlink(tree.c_str()) == 0 || errno == ENOENT;
  size_t seen = 0;
  TreeVisitor v;
  v.entry = [&](int dirfd, const char* name, const struct stat& e) {
    if (!S_ISDIR(e.st_mode)) ::unlinkat(dirfd, name, 0);
    return (++seen & 1023) != 0 || !stop.load();
  };
  v.left = [](int parent, const char* name) { ::unlinkat(parent, name, AT_REMOVEDIR); };
  if (!walk_tree(tree, v, /*with_stats=*/false).ok()) return false;
  return ::rmdir(tree.c_str()) == 0 || errno == ENOENT;
}

}  // namespace boxcar
