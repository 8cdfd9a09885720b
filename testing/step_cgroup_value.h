// What a step's cgroup says, read from the host: for the executors' tests that check a step's
// limits reached the kernel (cgroup v1, as on this kind of host).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace boxcar::testing {

// The first line of `file` in the `controller` hierarchy's step cgroup of this process's
// executor (<own cgroup>/boxcar/<pid>-<n>/<step>/, cgroup_parent's default); of the last
// step found when there are several; "" when there is none.
// The step cgroups of this process's executors in the `controller` hierarchy.
inline std::vector<std::filesystem::path> step_cgroups(const std::string& controller) {
  std::string own;  // the test process's cgroup in that hierarchy
  std::ifstream self("/proc/self/cgroup");
  for (std::string line; std::getline(self, line);) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    if (line.substr(a + 1, b - a - 1) == controller) own = line.substr(b + 1);
  }
  std::filesystem::path dir = "/sys/fs/cgroup/" + controller + (own == "/" ? "" : own) + "/boxcar";
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& inst : std::filesystem::directory_iterator(dir, ec)) {
    if (inst.path().filename().string().rfind(std::to_string(::getpid()) + "-", 0) != 0) continue;
    for (const auto& step : std::filesystem::directory_iterator(inst.path(), ec)) {
      if (step.is_directory()) out.push_back(step.path());
    }
  }
  return out;
}

inline std::string step_cgroup_value(const std::string& controller, const std::string& file) {
  std::string found;
  for (const auto& step : step_cgroups(controller)) {
    std::ifstream in(step / file);
    std::getline(in >> std::ws, found);
  }
  return found;
}

}  // namespace boxcar::testing
