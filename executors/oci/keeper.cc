#include "executors/oci/keeper.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>

#include "base/mountinfo.h"
#include "base/tree_walk.h"
#include "executors/oci/runtime_command.h"

// boxcar-keeper's bytes, from keeper_blob.S (.incbin of the static program at build time).
extern "C" const unsigned char boxcar_keeper_start[];
extern "C" const unsigned char boxcar_keeper_end[];

namespace boxcar::executors::oci {

Status write_keeper_program(const std::filesystem::path& path) {
  std::string tmp = path.string() + ".tmp";
  ::unlink(tmp.c_str());
  unique_fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0500));
  if (!out) return Error{"write " + tmp + ": " + std::strerror(errno), errno};
  const unsigned char* p = boxcar_keeper_start;
  while (p < boxcar_keeper_end) {
    ssize_t n = ::write(out.get(), p, static_cast<size_t>(boxcar_keeper_end - p));
    if (n <= 0) return Error{"write " + tmp + ": " + std::strerror(n < 0 ? errno : EIO), n < 0 ? errno : EIO};
    p += n;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Error{"write " + path.string() + ": " + std::strerror(errno), errno};
  return {};
}

Result<Keeper> spawn_keeper(const KeeperConfig& c) {
  int pipe[2];
  if (::pipe2(pipe, O_CLOEXEC) != 0) return Error{"keeper pipe", errno};
  unique_fd life_read(pipe[0]), life_write(pipe[1]);
  std::vector<std::string> args = {"boxcar-keeper", c.runtime, c.runtime_root, c.bundle, c.id};
  args.insert(args.end(), c.unmount.begin(), c.unmount.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  pid_t pid = ::fork();
  if (pid < 0) return Error{"fork", errno};
  if (pid == 0) {
    // Above 4 first, so that placing them at 3 and 4 overwrites neither.
    int ctl = ::fcntl(c.ctl, F_DUPFD, 10), life = ::fcntl(life_read.get(), F_DUPFD, 10);
    if (ctl < 0 || life < 0 || ::dup2(ctl, kKeeperControlFd) < 0 || ::dup2(life, kKeeperLifeFd) < 0) ::_exit(126);
    ::close_range(kKeeperLifeFd + 1, ~0U, 0);
    ::execve(c.program.c_str(), argv.data(), envp);
    ::_exit(127);
  }
  Keeper k;
  k.pid = pid;
  k.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!k.pidfd) {
    int e = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return Error{"pidfd_open", e};
  }
  k.life = std::move(life_write);
  return k;
}

void remove_leftovers(const std::string& runtime, const std::string& runtime_root, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(runtime_root, ec)) {
    run_command({runtime, "--root", runtime_root, "delete", "--force", entry.path().filename().string()});
  }
  // Deepest first: a sandbox's .git binds sit on its workspace mount. Mount points compare
  // unescaped: a state directory with a space in its path is "\040" in mountinfo.
  std::vector<std::string> mounts;
  std::ifstream in("/proc/self/mountinfo");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  for (const MountInfo& m : parse_mountinfo(text)) {
    if (m.mount_point == dir || m.mount_point.rfind(dir + "/", 0) == 0) mounts.push_back(m.mount_point);
  }
  std::sort(mounts.begin(), mounts.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
  // Never through a mount that is still there (a workspace mount shows the job's checkout).
  std::atomic<bool> never{false};
  remove_tree(dir, never);
}

}  // namespace boxcar::executors::oci
