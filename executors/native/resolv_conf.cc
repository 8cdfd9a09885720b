#include "executors/native/resolv_conf.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <utility>

#include "executors/native/cgroup.h"

namespace boxcar::executors::native {

namespace fs = std::filesystem;

namespace {

Status write_file(const fs::path& path, const std::string& content) {
  ::unlink(path.c_str());
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444));
  if (!fd || ::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size()) ||
      ::fchmod(fd.get(), 0444) != 0) {
    return Error{"resolv.conf: writing " + path.string() + ": " + std::strerror(errno), errno};
  }
  return {};
}

}  // namespace

std::string no_network_resolv_conf() {
  return "# boxcar: this step has network = \"none\": it has no network and no DNS.\n"
         "# Use network = \"job\" (the default) to reach the job's resolver and the internet.\n";
}

std::string resolv_conf_for(NetworkMode mode, const std::string& job_resolv_conf) {
  if (job_resolv_conf.empty()) return {};
  switch (mode) {
    case NetworkMode::job:
      return job_resolv_conf;
    case NetworkMode::none:
      return no_network_resolv_conf();
    case NetworkMode::host:
      return {};
  }
  return {};
}

void ResolvFiles::remove() {
  if (!job_.empty()) ::unlink(job_.c_str());
  if (!none_.empty()) ::unlink(none_.c_str());
  job_.clear();
  none_.clear();
}

ResolvFiles& ResolvFiles::operator=(ResolvFiles&& other) noexcept {
  if (this == &other) return *this;
  remove();
  job_ = std::exchange(other.job_, {});
  none_ = std::exchange(other.none_, {});
  return *this;
}

Result<ResolvFiles> ResolvFiles::write(const fs::path& dir, const std::string& instance,
                                       const std::string& job_resolv_conf) {
  static std::atomic<uint64_t> jobs{0};  // executors of one process share the instance name
  ResolvFiles files;
  if (job_resolv_conf.empty()) return files;
  std::string name = instance + "-" + std::to_string(++jobs);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || ::chmod(dir.c_str(), 0711) != 0) {
    int e = ec ? ec.value() : errno;
    return Error{"resolv.conf: directory " + dir.string() + ": " + std::strerror(e), e};
  }
  fs::path job = dir / (name + ".conf"), none = dir / (name + "-none.conf");
  if (Status s = write_file(job, job_resolv_conf); !s) return s.error();
  files.job_ = job;
  if (Status s = write_file(none, no_network_resolv_conf()); !s) return s.error();
  files.none_ = none;
  return files;
}

fs::path ResolvFiles::file_for(NetworkMode mode) const {
  if (mode == NetworkMode::job) return job_;
  if (mode == NetworkMode::none) return none_;
  return {};
}

void remove_stale_resolv_files(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    auto first = name.find('-');
    auto second = first == std::string::npos ? first : name.find('-', first + 1);
    if (second != std::string::npos && CgroupRoot::instance_alive(name.substr(0, second))) continue;
    ::unlink(entry.path().c_str());
  }
}

Result<unique_fd> resolv_conf_mount(const fs::path& file) {
  unique_fd tree(::open_tree(AT_FDCWD, file.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW));
  if (!tree) return Error{"resolv.conf: open_tree " + file.string() + ": " + std::strerror(errno), errno};
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    return Error{"resolv.conf: read-only bind of " + file.string() + ": " + std::strerror(errno), errno};
  }
  return tree;
}

Failure mount_resolv_conf(int mount_fd, const std::string& root) {
  std::string target = root + "/etc/resolv.conf";
  // No MOVE_MOUNT_T_SYMLINKS: a symlink there is mounted over, not followed out of the root.
  if (::move_mount(mount_fd, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return fail("resolv.conf mount");
  }
  return ok();
}

}  // namespace boxcar::executors::native
