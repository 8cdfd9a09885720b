// What the executors' tests of job networks look at from the host: a network namespace made by
// the test (as the agent's job network would be), which namespace a sandbox's process is in,
// and the net_cls class id of the cgroup a process is in (cgroup v1, read through mountinfo).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "base/mountinfo.h"
#include "base/unique_fd.h"

namespace boxcar::testing {

// A new, empty network namespace (on a thread of its own, so the caller's stays as it is).
inline unique_fd make_test_netns() {
  unique_fd ns;
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) == 0) ns.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  }).join();
  return ns;
}

// "net:[4026532...]", as `readlink /proc/self/ns/net` prints it inside a sandbox.
inline std::string netns_name(int fd) {
  struct stat st{};
  ::fstat(fd, &st);
  return "net:[" + std::to_string(st.st_ino) + "]";
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The host pid of a process whose command line is exactly `argv0 arg` (NUL-separated), or 0.
inline pid_t find_process(const std::string& argv0, const std::string& arg) {
  std::string want = argv0 + '\0' + arg + '\0';
  std::error_code ec;
  for (const auto& p : std::filesystem::directory_iterator("/proc", ec)) {
    if (read_text(p.path() / "cmdline") == want) return static_cast<pid_t>(std::atoi(p.path().filename().c_str()));
  }
  return 0;
}

// The host directory of the net_cls cgroup `pid` is in, "" when none is mounted.
inline std::string net_cls_dir_of(pid_t pid) {
  std::string mount;
  for (const auto& m : parse_mountinfo(read_text("/proc/self/mountinfo"))) {
    if (m.type == "cgroup" && m.root == "/" && ("," + m.super_options + ",").find(",net_cls,") != std::string::npos &&
        (mount.empty() || m.mount_point == "/run/boxcar/cgroup/net_cls")) {
      mount = m.mount_point;  // every mount of the hierarchy shows the same; boxcar's stays
    }
  }
  std::istringstream lines(read_text("/proc/" + std::to_string(pid) + "/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos || mount.empty()) continue;
    std::string controllers = "," + line.substr(a + 1, b - a - 1) + ",";
    if (controllers.find(",net_cls,") != std::string::npos) return mount + line.substr(b + 1);
  }
  return {};
}

// net_cls.classid of the cgroup `pid` is in (decimal, as the kernel prints it), "" when none.
inline std::string net_class_of(pid_t pid) {
  std::string dir = net_cls_dir_of(pid);
  if (dir.empty()) return {};
  std::string text = read_text(dir + "/net_cls.classid");
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// The parent pid of `pid` (the sandbox's init for a daemon whose parent has exited).
inline pid_t parent_of(pid_t pid) {
  std::istringstream status(read_text("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("PPid:", 0) == 0) return static_cast<pid_t>(std::atoi(line.c_str() + 5));
  }
  return 0;
}

}  // namespace boxcar::testing
