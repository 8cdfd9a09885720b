// BoxcarProcess: runs the real boxcar binary for end-to-end tests and captures what it prints.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <boost/json.hpp>

namespace boxcar::testing {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
  long max_rss_kib = 0;  // peak resident memory of the boxcar process

  // stdout parsed as one JSON object per line (for --json runs).
  std::vector<boost::json::object> events() const;
};

// Runs BOXCAR_BINARY with `args` in `cwd`, with `extra_env` added to a minimal environment.
// If `interrupt_when` is non-empty, sends SIGINT once stdout contains it.
ProcessResult run_boxcar(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                         const std::vector<std::string>& extra_env = {},
                         const std::string& interrupt_when = "");

// A fresh directory under /tmp, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to path()/rel, creating directories.
  void write(const std::string& rel, const std::string& content) const;
  std::string read(const std::string& rel) const;

 private:
  std::filesystem::path path_;
};

// Holds 127.0.0.1:PORT listening, the way another program would, or leaves it to whoever
// already holds it: either way the port is taken while this lives. Port 0: a free port.
class HeldPort {
 public:
  explicit HeldPort(int port);
  ~HeldPort();
  HeldPort(const HeldPort&) = delete;
  HeldPort& operator=(const HeldPort&) = delete;
  int port() const;

 private:
  int fd_;
};

// Why `boxcar run --executor NAME` cannot run here ("" when it can): native and oci need
// root, oci also runc. For tests parametrized by executor, to skip with that reason.
std::string executor_unavailable(const std::string& name);

// The newest .boxcar/runs/<id>/ directory of a workspace.
std::filesystem::path latest_run(const std::filesystem::path& workspace);

}  // namespace boxcar::testing
