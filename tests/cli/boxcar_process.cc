#include "tests/cli/boxcar_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace boxcar::testing {

std::vector<boost::json::object> ProcessResult::events() const {
  std::vector<boost::json::object> parsed;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    parsed.push_back(boost::json::parse(line).as_object());
  }
  return parsed;
}

ProcessResult run_boxcar(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                         const std::vector<std::string>& extra_env,
                         const std::string& interrupt_when) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe");
  }
  std::vector<std::string> argv_s = {BOXCAR_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"};
  env_s.insert(env_s.end(), extra_env.begin(), extra_env.end());
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (chdir(cwd.c_str()) != 0) _exit(126);
    std::vector<char*> argv, envp;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  ProcessResult r;
  bool interrupted = false;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
    }
    if (!interrupted && !interrupt_when.empty() && r.out.find(interrupt_when) != std::string::npos) {
      kill(pid, SIGINT);
      interrupted = true;
    }
  }
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  r.max_rss_kib = usage.ru_maxrss;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/boxcar-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void TempDir::write(const std::string& rel, const std::string& content) const {
  std::filesystem::create_directories((path_ / rel).parent_path());
  std::ofstream(path_ / rel, std::ios::binary) << content;
}

std::string TempDir::read(const std::string& rel) const {
  std::ifstream in(path_ / rel, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

HeldPort::HeldPort(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) ::listen(fd_, 1);
}

HeldPort::~HeldPort() { ::close(fd_); }

int HeldPort::port() const {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

std::filesystem::path latest_run(const std::filesystem::path& workspace) {
  std::filesystem::path newest;
  for (const auto& e : std::filesystem::directory_iterator(workspace / ".boxcar" / "runs")) {
    if (newest.empty() || e.path().filename() > newest.filename()) newest = e.path();
  }
  return newest;
}

std::string executor_unavailable(const std::string& name) {
  if (name == "host") return "";
  if (::geteuid() != 0) return "the " + name + " executor needs root";
  if (name == "oci" && ::access("/usr/sbin/runc", X_OK) != 0 && ::access("/usr/bin/runc", X_OK) != 0) {
    return "the oci executor needs runc (apt install runc)";
  }
  return "";
}

}  // namespace boxcar::testing
