#include "executors/native/git_readonly.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace boxcar::executors::native {

namespace {

constexpr size_t kMaxGitmodules = 1 << 20;
constexpr size_t kMaxPaths = 1000;
constexpr int kMaxDepth = 8;

// `path` beneath `dir`, never through a symlink (the last component included) nor out of it.
int open_beneath(int dir, const std::string& path, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, dir, path.c_str(), &how, sizeof how));
}

std::string read_small_file(int dir, const std::string& path) {
  unique_fd fd(open_beneath(dir, path, O_RDONLY));
  std::string text;
  if (!fd) return text;
  char buf[8192];
  ssize_t n;
  while (text.size() < kMaxGitmodules && (n = ::read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, n);
  return text;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The `path = ...` values of a .gitmodules file (git-config syntax; quotes removed).
std::vector<std::string> submodule_paths(const std::string& text) {
  std::vector<std::string> paths;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line = trim(std::string_view(text).substr(start, end - start));
    start = end + 1;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || trim(line.substr(0, eq)) != "path") continue;
    std::string_view value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    while (!value.empty() && value.back() == '/') value.remove_suffix(1);
    if (!value.empty()) paths.emplace_back(value);
  }
  return paths;
}

bool is_dir_beneath(int dir, const std::string& path) {
  unique_fd fd(open_beneath(dir, path, O_PATH));
  struct stat st{};
  return fd && ::fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists_beneath(int dir, const std::string& path) {
  unique_fd fd(open_beneath(dir, path, O_PATH));
  return fd.valid();
}

void collect(int workspace, const std::string& prefix, int depth, std::vector<std::string>& out) {
  if (depth > kMaxDepth) return;
  for (const std::string& sub : submodule_paths(read_small_file(workspace, prefix + ".gitmodules"))) {
    if (out.size() >= kMaxPaths) return;
    std::string path = prefix + sub;
    // Paths through a symlink or out of the workspace: git refuses such submodules too.
    if (!is_dir_beneath(workspace, path)) continue;
    if (exists_beneath(workspace, path + "/.git")) {
      out.push_back(path + "/.git");
      collect(workspace, path + "/", depth + 1, out);
    } else {
      out.push_back(path);  // not checked out: nothing may become its .git
    }
  }
}

Failure bind_read_only_over(int workspace, const std::string& path) {
  unique_fd target(open_beneath(workspace, path, O_PATH));
  if (!target) return fail("git read-only: open");
  // The host's git would follow it: refuse it rather than leave what it points to writable.
  struct stat st{};
  if (::fstat(target.get(), &st) != 0) return fail("git read-only: stat");
  if (S_ISLNK(st.st_mode)) return fail("git read-only: .git is a symlink", ELOOP);
  unique_fd tree(::open_tree(target.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE));
  if (!tree) return fail("git read-only: open_tree");
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0) {
    return fail("git read-only: mount_setattr");
  }
  if (::move_mount(tree.get(), "", target.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    return fail("git read-only: move_mount");
  }
  return ok();
}

}  // namespace

std::vector<std::string> git_metadata_paths(int workspace) {
  std::vector<std::string> out;
  if (exists_beneath(workspace, ".git")) out.push_back(".git");
  collect(workspace, "", 0, out);
  return out;
}

Failure make_git_read_only(const std::string& workspace) {
  unique_fd ws(::open(workspace.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!ws) return fail("git read-only: workspace");
  for (const std::string& path : git_metadata_paths(ws.get())) BOXCAR_TRY(bind_read_only_over(ws.get(), path));
  return ok();
}

}  // namespace boxcar::executors::native
