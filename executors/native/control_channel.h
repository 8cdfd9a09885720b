// The control channel between the agent and a sandbox's init: one SOCK_SEQPACKET socketpair,
// one record per message, file descriptors attached with SCM_RIGHTS.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace boxcar::executors::native {

// Message types. Agent -> init: helper, exec, terminate, configure. Agent -> a prewarmed sandbox's pid 1
// that waits for its step (ContainConfig::deferred): layered, then configure. Children -> agent:
// the rest.
enum class Msg : char {
  helper = 'H',    // a file operation (file_wire.h); fd: the socket the helper answers on
  unshared = 'U',  // pid 1 exists, mapped: its pid in the agent's pid namespace
  ready = 'R',     // init finished setting up the sandbox
  failed = 'F',    // setup failed: facility, errno
  exec = 'X',      // run a command: id, argv, env, workdir, user, ExecFlags; fds stdout, stderr,
                   // then stdin (exec_stdin), then its cgroup-v2 directory (exec_tree)
  terminate = 'T', // SIGTERM to every process of the sandbox
  configure = 'C', // a prewarmed sandbox was taken: its hostname
  layered = 'L',   // one of the step's layered directories: target, lower count; fds layer, lowers
  done = 'D',      // a command ended: id, wait status
  started = 'S',   // a command was forked, before it runs: id, its pid in the sandbox; fd its pidfd
  watch = 'W',     // a watch (watch_wire.h): path, recursive; fd: the socket the watch helper writes
};

// Msg::exec's flags: which optional descriptors follow stdout and stderr.
enum ExecFlags : uint64_t {
  exec_stdin = 1,  // fd 0 of the command (else /dev/null)
  exec_tree = 2,   // a cgroup-v2 directory the command is born in (clone3 CLONE_INTO_CGROUP)
};

constexpr size_t kMaxMessage = 4u << 20;
// Descriptors one record carries at most (the kernel's SCM_MAX_FD).
constexpr int kMaxMessageFds = 253;

// Appends fields to a message body.
class Writer {
 public:
  explicit Writer(Msg type) { buf_.push_back(static_cast<char>(type)); }
  Writer& u64(uint64_t v);
  Writer& str(std::string_view s);
  Writer& strs(const std::vector<std::string>& v);
  const std::string& data() const { return buf_; }

 private:
  std::string buf_;
};

// Reads fields back; any short read sets !ok().
class Reader {
 public:
  explicit Reader(std::string_view data) : d_(data.size() > 1 ? data.substr(1) : std::string_view{}) {}
  uint64_t u64();
  std::string str();
  std::vector<std::string> strs();
  bool ok() const { return ok_; }

 private:
  std::string_view d_;
  bool ok_ = true;
};

// Sends one record with `fds` attached. Returns 0 or an errno.
int send_message(int sock, const std::string& body, const int* fds = nullptr, int nfds = 0);
// Receives one record into `body` (first byte = type) and up to `max_fds` fds. Returns 0,
// an errno, or -1 at end of stream. `flags` as for recvmsg (MSG_DONTWAIT).
int recv_message(int sock, std::string& body, std::vector<int>& fds, int flags = 0);

}  // namespace boxcar::executors::native
