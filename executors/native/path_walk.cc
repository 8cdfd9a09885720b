#include "executors/native/path_walk.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <vector>

namespace boxcar::executors::native {

namespace {

constexpr int kMaxLinks = 40;  // the kernel's own limit (MAXSYMLINKS)

void split_into(const std::string& path, std::deque<std::string>& out, bool front) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  if (front) out.insert(out.begin(), parts.begin(), parts.end());
  else out.insert(out.end(), parts.begin(), parts.end());
}

// The directories reached so far; the root (not owned) stays at the bottom, so `..` stops there.
class DirStack {
 public:
  explicit DirStack(int root) : root_(root) {}
  ~DirStack() { to_root(); }
  int top() const { return fds_.empty() ? root_ : fds_.back(); }
  void push(int fd) { fds_.push_back(fd); }
  void pop() {
    if (fds_.empty()) return;
    ::close(fds_.back());
    fds_.pop_back();
  }
  void to_root() {
    while (!fds_.empty()) pop();
  }

 private:
  int root_;
  std::vector<int> fds_;
};

int fail(int err) {
  errno = err;
  return -1;
}

}  // namespace

int PathWalk::open(const std::string& path, int flags, bool follow_last, unsigned mode) const {
  std::string unused;
  return walk(path, false, unused, flags, follow_last, mode);
}

int PathWalk::open_parent(const std::string& path, std::string& name) const {
  return walk(path, true, name, O_PATH | O_DIRECTORY, true, 0);
}

int PathWalk::walk(const std::string& path, bool to_parent, std::string& name, int flags, bool follow_last,
                   unsigned mode) const {
  DirStack dirs(root_);
  std::deque<std::string> todo;
  split_into(path, todo, false);
  int links = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == ".") continue;
    if (c == "..") {
      dirs.pop();
      continue;
    }
    const bool last = todo.empty();
    const int dir = dirs.top();
    if (last && to_parent) {
      name = c;
      return ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
    }
    int fd = last ? ::openat(dir, c.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode)
                  : ::openat(dir, c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      struct stat st;
      if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        return fail(e);
      }
      if (!S_ISLNK(st.st_mode)) {
        if (last) return fd;
        if (!S_ISDIR(st.st_mode)) {
          ::close(fd);
          return fail(ENOTDIR);
        }
        dirs.push(fd);
        continue;
      }
      // An O_PATH open of the link itself.
      if (last && !follow_last) return fd;
      ::close(fd);
    } else if (!(errno == ELOOP && last && follow_last)) {
      return -1;
    }
    // A symlink to follow: its text, walked again inside the root.
    if (++links > kMaxLinks) return fail(ELOOP);
    struct statfs fs;
    if (::fstatfs(dir, &fs) != 0) return -1;
    if (fs.f_type == PROC_SUPER_MAGIC) return fail(ELOOP);  // a magic link, or a way to one
    char target[PATH_MAX];
    ssize_t n = ::readlinkat(dir, c.c_str(), target, sizeof target);
    if (n < 0) return fail(errno == EINVAL ? ELOOP : errno);  // ELOOP for something else than a link
    if (n == 0 || static_cast<size_t>(n) >= sizeof target) return fail(ENOENT);
    std::string text(target, static_cast<size_t>(n));
    if (text[0] == '/') dirs.to_root();
    split_into(text, todo, true);
    if (todo.empty()) todo.push_back(".");  // "/" or "." as the whole target: that directory
  }
  // Nothing was left to name: "/" itself, or a path ending in a directory reached by `..`.
  if (to_parent) return fail(EINVAL);
  return ::openat(dirs.top(), ".", (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC, mode);
}

}  // namespace boxcar::executors::native
