#include "executors/loopback.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace boxcar::executors {

Result<unique_fd> connect_loopback(uint16_t port, int netns) {
  unique_fd sock;
  if (netns >= 0) {
    unique_fd own(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!own) return Error{std::string("open own network namespace: ") + std::strerror(errno), errno};
    if (::setns(netns, CLONE_NEWNET) != 0) {
      return Error{std::string("enter the sandbox's network namespace: ") + std::strerror(errno), errno};
    }
    sock.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int saved = errno;
    if (::setns(own.get(), CLONE_NEWNET) != 0) {
      // Staying in a step's namespace would cut the agent off from its server: nothing sane
      // can continue.
      std::abort();
    }
    if (!sock) return Error{std::string("socket: ") + std::strerror(saved), saved};
  } else {
    sock.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!sock) return Error{std::string("socket: ") + std::strerror(errno), errno};
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // EINPROGRESS: the SYN is out but unanswered, as when the server's accept queue is full and
  // the kernel drops it. The caller's event loop waits for it; this thread must not.
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    return Error{"connect to port " + std::to_string(port) + ": " + std::strerror(errno), errno};
  }
  return sock;
}

}  // namespace boxcar::executors
