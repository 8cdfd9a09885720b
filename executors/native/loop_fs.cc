#include "executors/native/loop_fs.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace boxcar::executors::native {

namespace fs = std::filesystem;

namespace {

Error loop_error(const std::string& what, int err) {
  return Error{"image root write limit: " + what + ": " + std::strerror(err), err};
}

// mke2fs's path: the agent's PATH may lack the sbin directories.
std::optional<std::string> find_mke2fs() {
  for (const char* p : {"/usr/sbin/mke2fs", "/sbin/mke2fs", "/usr/local/sbin/mke2fs"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return std::nullopt;
}

// Runs `argv` with stdout and stderr into a pipe; its exit status and what it printed.
Result<std::pair<int, std::string>> run_capturing(const std::vector<std::string>& argv) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return loop_error("pipe", errno);
  unique_fd rd(pipefd[0]), wr(pipefd[1]);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&actions, wr.get(), 1);
  ::posix_spawn_file_actions_adddup2(&actions, wr.get(), 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char* env[] = {const_cast<char*>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nullptr};
  pid_t pid = 0;
  int err = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), env);
  ::posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return loop_error("running " + argv[0], err);
  wr.reset();
  std::string out;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(rd.get(), buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0 && out.size() < 4096) out.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return std::pair{status, out};
}

// A sparse copy: only the template's data extents (a few hundred KiB of metadata) are written.
Status copy_sparse(const fs::path& from, const fs::path& to) {
  unique_fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!in) return loop_error("opening " + from.string(), errno);
  unique_fd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!out) return loop_error("creating " + to.string(), errno);
  struct stat st{};
  if (::fstat(in.get(), &st) != 0) return loop_error("stat " + from.string(), errno);
  off_t pos = 0;
  while (pos < st.st_size) {
    off_t data = ::lseek(in.get(), pos, SEEK_DATA);
    if (data < 0) break;  // ENXIO: only a hole is left
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0) return loop_error("reading " + from.string(), errno);
    loff_t src = data, dst = data;
    while (src < hole) {
      ssize_t n = ::copy_file_range(in.get(), &src, out.get(), &dst, static_cast<size_t>(hole - src), 0);
      if (n <= 0) return loop_error("copying " + from.string(), n < 0 ? errno : EIO);
    }
    pos = hole;
  }
  if (::ftruncate(out.get(), st.st_size) != 0) return loop_error("sizing " + to.string(), errno);
  return {};
}

struct AttachedLoop {
  std::string dev;
  unique_fd fd;  // held until the mount holds the device: autoclear detaches on the last close
};

// A free loop device attached to `image` that detaches itself once the filesystem on it is
// unmounted. Direct I/O where the backing filesystem takes it: the step's data is cached once,
// by the ext4 above, not twice.
Result<AttachedLoop> attach_loop(const fs::path& image) {
  unique_fd file(::open(image.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (!file) return loop_error("opening " + image.string(), errno);
  unique_fd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control) {
    return loop_error("/dev/loop-control (this host offers no loop devices; --max-image-write 0 runs image "
                      "steps without the limit)",
                      errno);
  }
  // Another process may take the free device between GET_FREE and CONFIGURE: try again.
  for (int attempt = 0; attempt < 16; ++attempt) {
    int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return loop_error("finding a free loop device", errno);
    std::string dev = "/dev/loop" + std::to_string(n);
    unique_fd loop(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
    if (!loop) return loop_error("opening " + dev, errno);
    loop_config config{};
    config.fd = static_cast<uint32_t>(file.get());
    config.block_size = 4096;
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
    int rc = ::ioctl(loop.get(), LOOP_CONFIGURE, &config);
    if (rc != 0 && errno == EINVAL) {
      config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
      rc = ::ioctl(loop.get(), LOOP_CONFIGURE, &config);
    }
    if (rc == 0) return AttachedLoop{dev, std::move(loop)};
    if (errno != EBUSY) return loop_error("attaching " + image.string() + " to " + dev, errno);
  }
  return loop_error("attaching " + image.string() + " (every free loop device was taken first)", EBUSY);
}

}  // namespace

Status make_loop_fs_template(const fs::path& image, uint64_t bytes) {
  auto mke2fs = find_mke2fs();
  if (!mke2fs) return Error{"image root write limit: mke2fs not found (install e2fsprogs)", ENOENT};
  {
    unique_fd f(::open(image.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!f) return loop_error("creating " + image.string(), errno);
    if (::ftruncate(f.get(), static_cast<off_t>(bytes)) != 0) return loop_error("sizing " + image.string(), errno);
  }
  // No journal: the filesystem lives as long as one step and is never mounted again after a
  // crash. lazy_itable_init + noinit_itable (at mount): inode tables are written as used, so
  // the copy stays small and its start cheap.
  auto ran = run_capturing({*mke2fs, "-q", "-F", "-t", "ext4", "-b", "4096", "-i", "16384", "-I", "256", "-m", "0",
                            "-O", "^has_journal,^resize_inode", "-E", "lazy_itable_init=1,nodiscard,root_owner=0:0",
                            image.string()});
  if (!ran) return ran.error();
  if (ran->first != 0) {
    return Error{"image root write limit: mke2fs " + image.string() + " failed: " + ran->second, EIO};
  }
  return {};
}

Status mount_loop_fs(const fs::path& template_image, const fs::path& image, const fs::path& mount_point) {
  if (Status copied = copy_sparse(template_image, image); !copied) {
    ::unlink(image.c_str());
    return copied;
  }
  auto dev = attach_loop(image);
  if (!dev) {
    ::unlink(image.c_str());
    return dev.error();
  }
  if (::mount(dev->dev.c_str(), mount_point.c_str(), "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME, "noinit_itable") != 0) {
    Error e = loop_error("mounting " + dev->dev + " at " + mount_point.string(), errno);
    ::unlink(image.c_str());  // the loop device detaches itself (autoclear) as its last fd closed
    return e;
  }
  if (::chmod(mount_point.c_str(), 0700) != 0) {
    Error e = loop_error("chmod " + mount_point.string(), errno);
    unmount_loop_fs(image, mount_point);
    return e;
  }
  return {};
}

void unmount_loop_fs(const fs::path& image, const fs::path& mount_point) {
  ::umount2(mount_point.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
  std::error_code ec;
  fs::remove_all(mount_point, ec);  // empty once unmounted; what it holds otherwise (not followed)
  ::unlink(image.c_str());
}

std::optional<bool> loop_fs_full(const fs::path& mount_point) {
  struct statvfs s{};
  if (::statvfs(mount_point.c_str(), &s) != 0) return std::nullopt;
  return static_cast<uint64_t>(s.f_bavail) * s.f_frsize < (1ull << 20) || s.f_favail == 0;
}

}  // namespace boxcar::executors::native
