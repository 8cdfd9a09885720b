#include "tests/security/security_fixture.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string_view>

namespace boxcar::executors {

Ran on_host(const std::string& script) {
  Ran r;
  int out[2];
  EXPECT_EQ(::pipe(out), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::close(out[0]);
    ::execl("/bin/bash", "bash", "-c", script.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) r.out.append(buf, n);
  ::close(out[0]);
  int status;
  ::waitpid(pid, &status, 0);
  r.outcome = WIFEXITED(status) ? Outcome::exited(WEXITSTATUS(status)) : Outcome::killed_by(WTERMSIG(status));
  return r;
}

std::vector<pid_t> pids_with(const std::string& marker) {
  std::vector<pid_t> found;
  for (const auto& p : fs::directory_iterator("/proc")) {
    std::string name = p.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmd(p.path() / "cmdline");
    std::string s((std::istreambuf_iterator<char>(cmd)), {});
    // argv[0] starts with the marker: the probe itself, not a shell whose script names it.
    if (s.rfind(marker, 0) == 0 && std::stoi(name) != ::getpid()) found.push_back(std::stoi(name));
  }
  return found;
}

std::string status_field(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  }
  return {};
}

bool memory_holds(pid_t pid, const std::string& needle) {
  std::string base = "/proc/" + std::to_string(pid);
  for (const char* file : {"/cmdline", "/environ"}) {
    std::ifstream in(base + file);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    if (text.find(needle) != std::string::npos) return true;
  }
  std::ifstream maps(base + "/maps");
  int mem = ::open((base + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (mem < 0) return false;
  bool found = false;
  for (std::string line; !found && std::getline(maps, line);) {
    unsigned long start = 0, end = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &start, &end, perms) != 3 || perms[0] != 'r') continue;
    if (line.find("[vvar") != std::string::npos || line.find("[vsyscall]") != std::string::npos) continue;
    std::string chunk(end - start, '\0');
    ssize_t n = ::pread(mem, chunk.data(), chunk.size(), static_cast<off_t>(start));
    if (n > 0 && std::string_view(chunk.data(), static_cast<size_t>(n)).find(needle) != std::string_view::npos) {
      found = true;
    }
  }
  ::close(mem);
  return found;
}

INSTANTIATE_TEST_SUITE_P(Executors, SecurityTest, ::testing::Values("native", "oci"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace boxcar::executors
