#include "testing/loopback_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace boxcar::testing {

int connect_from(const std::string& source, uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(s, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(s);
    return -1;
  }
  timeval guard{30, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
  return s;
}

std::string read_until(int fd, const std::string& needle) {
  std::string out;
  char buf[4096];
  while (needle.empty() || out.find(needle) == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string read_to_end(int fd) { return read_until(fd, ""); }

}  // namespace boxcar::testing
