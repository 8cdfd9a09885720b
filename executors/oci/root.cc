#include "executors/oci/root.h"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "base/unique_fd.h"
#include "executors/native/image_root.h"
#include "executors/native/init_executable.h"
#include "executors/native/rootfs.h"

namespace boxcar::executors::oci {

namespace {

Error fs_error(const std::string& what, int err) { return Error{what + ": " + std::strerror(err), err}; }

}  // namespace

Result<HostRoot> prepare_host_root(const std::filesystem::path& dir, const std::string& init_inside) {
  HostRoot root{dir.string(), {}};
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fs_error("host root " + dir.string(), ec.value());
  ::chmod(dir.c_str(), 0755);
  for (const std::string& name : native::system_dir_names()) {
    std::string host = "/" + name, target = root.path + host;
    struct stat st{};
    if (::lstat(host.c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char link[PATH_MAX];
      ssize_t n = ::readlink(host.c_str(), link, sizeof link - 1);
      if (n < 0) return fs_error("readlink " + host, errno);
      link[n] = 0;
      if (::symlink(link, target.c_str()) != 0 && errno != EEXIST) return fs_error("symlink " + target, errno);
    } else if (S_ISDIR(st.st_mode)) {
      if (::mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) return fs_error("mkdir " + target, errno);
      root.system_dirs.push_back(host);
    }
  }
  for (const char* d : {"/proc", "/dev", "/tmp", "/workspace"}) {
    if (::mkdir((root.path + d).c_str(), 0755) != 0 && errno != EEXIST) return fs_error("mkdir " + root.path + d, errno);
  }
  // runc would create the mount point itself, but the root is read-only by then.
  unique_fd f(::open((root.path + init_inside).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0444));
  if (!f) return fs_error("create " + root.path + init_inside, errno);
  return root;
}

Status write_init_file(const std::filesystem::path& path) {
  auto memfd = native::make_init_memfd();
  if (!memfd) return memfd.error();
  struct stat st{};
  if (::fstat(memfd->get(), &st) != 0) return fs_error("boxcar-init", errno);
  std::string tmp = path.string() + ".tmp";
  ::unlink(tmp.c_str());
  unique_fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0555));
  if (!out) return fs_error("write " + tmp, errno);
  off_t offset = 0;
  while (offset < st.st_size) {
    ssize_t n = ::sendfile(out.get(), memfd->get(), &offset, static_cast<size_t>(st.st_size - offset));
    if (n <= 0) return fs_error("write " + tmp, n < 0 ? errno : EIO);
  }
  if (::fchmod(out.get(), 0555) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) return fs_error("write " + path.string(), errno);
  return {};
}

Result<unique_fd> make_image_root(const std::vector<std::filesystem::path>& layers, const std::filesystem::path& upper,
                                  const std::filesystem::path& work, uid_t owner, const std::string& hostname,
                                  const std::string& resolv_conf) {
  if (layers.empty()) return Error{"image root: no layers", EINVAL};
  auto root = native::mount_image_layers(layers, upper, work);
  if (!root) return root.error();
  if (Status ready = native::prepare_image_root(root->get(), owner, hostname, resolv_conf); !ready) return ready.error();
  return std::move(*root);
}

}  // namespace boxcar::executors::oci
