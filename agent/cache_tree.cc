#include "agent/cache_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "base/beneath.h"
#include "base/unique_fd.h"

namespace boxcar::agent {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using Dir = std::unique_ptr<DIR, DirCloser>;

struct Level {
  Dir dir;
  std::string path;  // of the directory, "" for the root
  dev_t dev;
};

Result<Dir> open_dir(int fd) {
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int err = errno;
    ::close(fd);
    return Error{std::string("cannot read a directory: ") + std::strerror(err), err};
  }
  return Dir(d);
}

}  // namespace

Status walk_cache_tree(int root, const std::string& rel, const CacheTreeVisitor& visit) {
  std::vector<Level> stack;
  if (rel.empty()) {
    unique_fd fd = open_beneath(root, ".", O_RDONLY | O_DIRECTORY);
    if (!fd) return Error{std::string("cannot open the directory: ") + std::strerror(errno), errno};
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error{"cannot stat the directory", errno};
    auto d = open_dir(fd.release());
    if (!d) return d.error();
    stack.push_back({std::move(*d), "", st.st_dev});
  } else {
    // The place itself: opened beneath the root with no link anywhere on its path.
    unique_fd fd = open_beneath(root, rel, O_PATH);
    if (!fd) {
      if (errno == ENOENT) return Status{};
      if (errno == ELOOP || errno == EXDEV) {
        return Error{"\"" + rel + "\" is or passes through a link: a cache never follows one", errno};
      }
      return Error{"cannot open \"" + rel + "\": " + std::strerror(errno), errno};
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error{"cannot stat \"" + rel + "\"", errno};
    size_t slash = rel.rfind('/');
    std::string parent = slash == std::string::npos ? "." : rel.substr(0, slash);
    std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
    unique_fd parent_fd = open_beneath(root, parent, O_RDONLY | O_DIRECTORY);
    if (!parent_fd) return Error{"cannot open the directory of \"" + rel + "\"", errno};
    bool descend = true;
    if (Status s = visit(rel, parent_fd.get(), name.c_str(), st, descend); !s) return s;
    if (!S_ISDIR(st.st_mode) || !descend) return Status{};
    unique_fd dir_fd = open_beneath(root, rel, O_RDONLY | O_DIRECTORY);
    if (!dir_fd) return Error{"cannot open \"" + rel + "\": " + std::strerror(errno), errno};
    auto d = open_dir(dir_fd.release());
    if (!d) return d.error();
    stack.push_back({std::move(*d), rel, st.st_dev});
  }
  while (!stack.empty()) {
    Level& level = stack.back();
    errno = 0;
    struct dirent* e = ::readdir(level.dir.get());
    if (!e) {
      if (errno != 0) return Error{"cannot read \"" + level.path + "\"", errno};
      stack.pop_back();
      continue;
    }
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    int dirfd = ::dirfd(level.dir.get());
    struct stat st {};
    if (::fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // gone meanwhile
      return Error{"cannot stat an entry of \"" + level.path + "\"", errno};
    }
    std::string path = level.path.empty() ? e->d_name : level.path + "/" + e->d_name;
    bool descend = true;
    if (Status s = visit(path, dirfd, e->d_name, st, descend); !s) return s;
    if (!S_ISDIR(st.st_mode) || !descend || st.st_dev != level.dev) continue;
    if (stack.size() >= kMaxCacheTreeDepth) {
      return Error{"\"" + path + "\" is nested deeper than " + std::to_string(kMaxCacheTreeDepth) +
                   " directories", 0, ErrorCode::limit_exceeded};
    }
    int fd = ::openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return Error{"cannot open \"" + path + "\": " + std::strerror(errno), errno};
    }
    auto d = open_dir(fd);
    if (!d) return d.error();
    dev_t dev = level.dev;
    stack.push_back({std::move(*d), std::move(path), dev});
  }
  return Status{};
}

}  // namespace boxcar::agent
