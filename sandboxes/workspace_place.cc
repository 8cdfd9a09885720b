#include "sandboxes/workspace_place.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "base/beneath.h"
#include "base/tree_walk.h"
#include "base/unique_fd.h"

namespace boxcar::sandboxes {

namespace {

namespace fs = std::filesystem;

Error sys_error(const std::string& what, int err) {
  return Error{what + ": " + std::strerror(err), err, err == EEXIST ? ErrorCode::conflict : ErrorCode::invalid_input, "dir"};
}

std::vector<std::string> components(const std::string& rel) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= rel.size()) {
    size_t end = rel.find('/', at);
    if (end == std::string::npos) end = rel.size();
    if (end > at) out.push_back(rel.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

// Whether the directory `name` in `dir` holds nothing; false for anything not a directory
// (a symlink included: it is not opened through).
bool empty_dir(int dir, const std::string& name) {
  unique_fd fd = open_beneath(dir, name, O_RDONLY | O_DIRECTORY);
  if (!fd.valid()) return false;
  DIR* d = ::fdopendir(fd.release());
  if (!d) return false;
  bool empty = true;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

// The agent runs with umask 077, so the checkout's files are 0600 and its directories 0700; a
// `git clone` in the sandbox (umask 022) gives 0644 and 0755, which is what a user expects when
// a non-root user in the sandbox reads the tree. The staged tree is the agent's own (outside the
// sandbox's view), so nothing here races the sandbox.
mode_t as_with_umask_022(mode_t mode) {
  mode_t owner = mode & 0700;
  return (mode & 07700) | ((owner & 0500) >> 3) | ((owner & 0500) >> 6);
}

Status own_tree(const fs::path& tree, uid_t uid, gid_t gid, bool change_owner) {
  struct stat top {};
  if (::lstat(tree.c_str(), &top) != 0) return sys_error("cannot stat " + tree.string(), errno);
  ::chmod(tree.c_str(), as_with_umask_022(top.st_mode & 07777));
  if (change_owner && ::lchown(tree.c_str(), uid, gid) != 0) return sys_error("cannot chown " + tree.string(), errno);
  int failed = 0;
  TreeVisitor v;
  v.entry = [&](int dirfd, const char* name, const struct stat& st) {
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) ::fchmodat(dirfd, name, as_with_umask_022(st.st_mode & 07777), 0);
    if (change_owner && ::fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) failed = errno;
    return failed == 0;
  };
  if (Status st = walk_tree(tree, v, true); !st.ok()) {
    return Error{"cannot chown the checkout: " + (failed ? std::string(std::strerror(failed)) : st.error().message), failed};
  }
  return {};
}

}  // namespace

Status place_in_workspace(const fs::path& workspace, const std::string& rel, const fs::path& staged, bool replace) {
  std::vector<std::string> parts = components(rel);
  if (parts.empty()) return Error{"the checkout needs a directory below /workspace", EINVAL, ErrorCode::invalid_input, "dir"};
  // The workspace itself is the agent's (<data>/sandboxes/<id>/workspace): only what is below
  // it is the sandbox's.
  unique_fd cur(::open(workspace.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!cur.valid()) return sys_error("cannot open " + workspace.string(), errno);
  struct stat ws {};
  if (::fstat(cur.get(), &ws) != 0) return sys_error("cannot stat " + workspace.string(), errno);

  std::string shown = "/workspace";
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const std::string& name = parts[i];
    shown += "/" + name;
    if (::mkdirat(cur.get(), name.c_str(), 0755) == 0) {
      ::fchownat(cur.get(), name.c_str(), ws.st_uid, ws.st_gid, AT_SYMLINK_NOFOLLOW);
    } else if (errno != EEXIST) {
      return sys_error("cannot create " + shown, errno);
    }
    unique_fd next = open_beneath(cur.get(), name, O_PATH | O_DIRECTORY);
    if (!next.valid()) {
      int err = errno;
      if (err == ELOOP || err == EXDEV) return sys_error(shown + " is a symbolic link (never followed)", ELOOP);
      return sys_error(shown + " is not a directory", err);
    }
    cur = std::move(next);
  }
  shown += "/" + parts.back();

  bool change_owner = ws.st_uid != ::geteuid() || ws.st_gid != ::getegid();
  if (Status st = own_tree(staged, ws.st_uid, ws.st_gid, change_owner); !st.ok()) return st;
  unique_fd from(::open(staged.parent_path().c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!from.valid()) return sys_error("cannot open " + staged.parent_path().string(), errno);
  const std::string staged_name = staged.filename().string();
  const char* to = parts.back().c_str();

  struct stat there {};
  bool exists = ::fstatat(cur.get(), to, &there, AT_SYMLINK_NOFOLLOW) == 0;
  if (!exists || (S_ISDIR(there.st_mode) && empty_dir(cur.get(), parts.back()))) {
    // rename(2) replaces an empty directory and nothing else: if the sandbox fills it (or
    // plants something) meanwhile, this fails with ENOTEMPTY or EEXIST and nothing moves.
    unsigned flags = exists ? 0 : RENAME_NOREPLACE;
    if (::syscall(SYS_renameat2, from.get(), staged_name.c_str(), cur.get(), to, flags) == 0) return {};
    int err = errno;
    if (err != EEXIST && err != ENOTEMPTY && err != EISDIR && err != ENOTDIR) {
      return sys_error("cannot move the checkout to " + shown, err);
    }
  }
  if (!replace) {
    return Error{shown + " exists and is not an empty directory: pass replace:true to replace it, or another dir",
                 EEXIST, ErrorCode::conflict, "dir"};
  }
  // Swapped atomically: whatever the sandbox had there (a symlink too) lands at the staged
  // name, on the agent's side, and is removed from there without following anything.
  if (::syscall(SYS_renameat2, from.get(), staged_name.c_str(), cur.get(), to, RENAME_EXCHANGE) != 0) {
    return sys_error("cannot replace " + shown, errno);
  }
  std::atomic<bool> stop{false};
  if (!remove_tree(staged, stop)) return Error{"the replaced " + shown + " could not be removed fully from " + staged.string()};
  return {};
}

}  // namespace boxcar::sandboxes
