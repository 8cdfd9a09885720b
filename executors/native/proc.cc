#include "executors/native/proc.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include "executors/native/mounts.h"

namespace boxcar::executors::native {

namespace {

constexpr const char* kMasked[] = {"kcore",       "keys",        "timer_list", "sched_debug",
                                   "latency_stats", "timer_stats", "acpi",     "asound",
                                   "scsi"};
constexpr const char* kReadOnly[] = {"bus", "fs", "irq", "sys", "sysrq-trigger"};

}  // namespace

std::vector<std::string> masked_proc_paths() {
  std::vector<std::string> out;
  for (const char* name : kMasked) out.push_back(std::string("/proc/") + name);
  return out;
}

std::vector<std::string> read_only_proc_paths() {
  std::vector<std::string> out;
  for (const char* name : kReadOnly) out.push_back(std::string("/proc/") + name);
  return out;
}

Failure mount_proc(const std::string& root) {
  std::string proc = root + "/proc";
  if (::mount("proc", proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return fail("mount /proc");
  }
  for (const char* name : kMasked) {
    std::string path = proc + "/" + name;
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      BOXCAR_TRY(mount_tmpfs(path.c_str(), "size=0,mode=0555", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                             "mask /proc directory"));
    } else if (::mount("/dev/null", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return fail("mask /proc file");
    }
  }
  for (const char* name : kReadOnly) {
    std::string path = proc + "/" + name;
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      return fail("read-only /proc path");
    }
    BOXCAR_TRY(set_attr(path.c_str(), MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                          MOUNT_ATTR_NOEXEC,
                        true, "read-only /proc path"));
  }
  return ok();
}

}  // namespace boxcar::executors::native
