#include "agent/workspace_layers.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cstring>
#include <map>

#include "executors/native/overlay.h"
#include "pipeline/workspace_stack.h"

namespace boxcar::agent {

namespace fs = std::filesystem;

namespace {

Error layers_error(const std::string& what, const fs::path& path, int err) {
  return Error{"workspace layers: " + what + " " + path.string() + ": " + std::strerror(err), err};
}

// A fresh, empty directory at `path` (whatever a failed attempt or a dead agent left there goes).
Status fresh_dir(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);  // never follows a link: removes the link itself
  if (ec) return layers_error("removing", path, ec.value());
  fs::create_directories(path.parent_path(), ec);
  if (::mkdir(path.c_str(), 0700) != 0) return layers_error("creating", path, errno);
  return {};
}

// overlayfs keeps whiteouts of a layer made in a user namespace as user.overlay.* xattrs.
Status check_user_xattrs(const fs::path& dir) {
  const char* name = "user.boxcar.probe";
  if (::setxattr(dir.c_str(), name, "1", 1, 0) != 0) {
    int e = errno;
    return Error{"workspace layers: " + dir.string() + " is on a filesystem without user extended attributes (" +
                     std::strerror(e) +
                     "), which step layers need: put the agent's data directory (or, for `boxcar run`, the "
                     "state directory) on ext4, xfs, btrfs or a tmpfs of Linux 6.6 or later",
                 e};
  }
  ::removexattr(dir.c_str(), name);
  return {};
}

}  // namespace

struct WorkspaceLayers::Impl {
  Remover remove;
  fs::path checkout;
  fs::path dir;
  std::vector<std::vector<size_t>> stacks;   // by step: pipeline::workspace_stack
  std::vector<std::vector<fs::path>> caches;  // by step: its restored caches, highest first
  // By step and name: the lowers of each layered directory given out (for views).
  std::vector<std::map<std::string, std::vector<fs::path>>> lowers;

  fs::path layer(size_t step, const std::string& name) const { return dir / std::to_string(step) / name; }
};

WorkspaceLayers::WorkspaceLayers(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WorkspaceLayers::~WorkspaceLayers() {
  if (impl_->remove) {
    impl_->remove(impl_->dir);
    return;
  }
  std::error_code ec;
  fs::remove_all(impl_->dir, ec);
}

Result<std::unique_ptr<WorkspaceLayers>> WorkspaceLayers::make(const pipeline::ExpandedPipeline& pipeline,
                                                              fs::path checkout, fs::path dir, Remover remove) {
  std::error_code ec;
  fs::path inside = fs::weakly_canonical(dir, ec).lexically_relative(fs::weakly_canonical(checkout, ec));
  if (!inside.empty() && *inside.begin() != "..") {
    return Error{"workspace layers: " + dir.string() + " is inside the workspace " + checkout.string() +
                     ", which every step's layers stack on: put it outside",
                 EINVAL};
  }
  if (Status made = fresh_dir(dir); !made) return made.error();
  if (Status xattrs = check_user_xattrs(dir); !xattrs) {
    fs::remove_all(dir, ec);
    return xattrs.error();
  }
  auto impl = std::make_unique<Impl>();
  impl->remove = std::move(remove);
  impl->checkout = std::move(checkout);
  impl->dir = std::move(dir);
  for (size_t i = 0; i < pipeline.steps.size(); ++i) impl->stacks.push_back(pipeline::workspace_stack(pipeline, i));
  impl->caches.resize(pipeline.steps.size());
  impl->lowers.resize(pipeline.steps.size());
  return std::unique_ptr<WorkspaceLayers>(new WorkspaceLayers(std::move(impl)));
}

Result<executors::LayeredDir> WorkspaceLayers::workspace(size_t step, const std::vector<fs::path>& caches) {
  Impl& m = *impl_;
  if (step >= m.stacks.size()) return Error{"workspace layers: no step " + std::to_string(step), EINVAL};
  executors::LayeredDir d;
  d.layer = m.layer(step, "workspace");
  if (Status made = fresh_dir(d.layer); !made) return made.error();
  m.caches[step] = caches;
  std::vector<fs::path> lowers;
  auto add = [&](const fs::path& p) {
    for (const auto& have : lowers) {
      if (have == p) return;
    }
    lowers.push_back(p);
  };
  // The needs' layers (a need that never ran has none), then the step's own caches, then its
  // needs' caches, then the checkout: caches hold what no step wrote, so their place among the
  // layers matters only where a step wrote into a cached path, and then the step's write wins.
  for (size_t s : m.stacks[step]) {
    fs::path upper = this->upper(s);
    struct stat st{};
    if (::lstat(upper.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) add(upper);
  }
  for (const auto& c : caches) add(c);
  for (size_t s : m.stacks[step]) {
    for (const auto& c : m.caches[s]) add(c);
  }
  add(m.checkout);
  d.lowers = lowers;
  m.lowers[step]["workspace"] = std::move(lowers);
  return d;
}

Result<executors::LayeredDir> WorkspaceLayers::extra(size_t step, const std::string& name, const std::string& target,
                                                     const std::vector<fs::path>& lowers) {
  Impl& m = *impl_;
  if (step >= m.stacks.size()) return Error{"workspace layers: no step " + std::to_string(step), EINVAL};
  bool valid = !name.empty() && name[0] >= 'a' && name[0] <= 'z';
  for (char c : name) valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
  if (!valid || name == "workspace") {
    return Error{"workspace layers: \"" + name + "\" is not a layer name ([a-z][a-z0-9]*, not \"workspace\")",
                 EINVAL};
  }
  executors::LayeredDir d;
  d.target = target;
  d.layer = m.layer(step, name);
  if (Status made = fresh_dir(d.layer); !made) return made.error();
  d.lowers = lowers;
  m.lowers[step][name] = lowers;
  return d;
}

Result<unique_fd> WorkspaceLayers::view(size_t step, const std::string& name, bool with_own) const {
  const Impl& m = *impl_;
  if (step >= m.lowers.size()) return Error{"workspace layers: no step " + std::to_string(step), EINVAL};
  auto it = m.lowers[step].find(name);
  if (it == m.lowers[step].end()) {
    return Error{"workspace layers: step " + std::to_string(step) + " has no layer \"" + name + "\"", ENOENT};
  }
  std::vector<std::string> lowers;
  if (with_own) lowers.push_back(upper(step, name).string());
  for (const auto& l : it->second) lowers.push_back(l.string());
  if (lowers.size() == 1) {
    // overlayfs wants two lowers without an upper: one directory is its own view.
    unique_fd tree(::open_tree(AT_FDCWD, lowers.front().c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (!tree) return layers_error("viewing", lowers.front(), errno);
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
      return layers_error("viewing", lowers.front(), errno);
    }
    return tree;
  }
  // Without upper and work, overlayfs mounts read-only; host root reads the user.overlay.*
  // whiteouts the step's namespace wrote (userxattr).
  return executors::native::mount_overlay(
      lowers, {}, {}, executors::native::OverlayOptions{.what = "workspace view", .userxattr = true});
}

fs::path WorkspaceLayers::upper(size_t step, const std::string& name) const {
  return impl_->layer(step, name) / "upper";
}

}  // namespace boxcar::agent
