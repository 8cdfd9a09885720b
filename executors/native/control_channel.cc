#include "executors/native/control_channel.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace boxcar::executors::native {

Writer& Writer::u64(uint64_t v) {
  buf_.append(reinterpret_cast<const char*>(&v), sizeof v);
  return *this;
}

Writer& Writer::str(std::string_view s) {
  u64(s.size());
  buf_.append(s);
  return *this;
}

Writer& Writer::strs(const std::vector<std::string>& v) {
  u64(v.size());
  for (const auto& s : v) str(s);
  return *this;
}

uint64_t Reader::u64() {
  uint64_t v = 0;
  if (d_.size() < sizeof v) {
    ok_ = false;
    return 0;
  }
  std::memcpy(&v, d_.data(), sizeof v);
  d_.remove_prefix(sizeof v);
  return v;
}

std::string Reader::str() {
  uint64_t n = u64();
  if (!ok_ || n > d_.size()) {
    ok_ = false;
    return {};
  }
  std::string s(d_.substr(0, n));
  d_.remove_prefix(n);
  return s;
}

std::vector<std::string> Reader::strs() {
  uint64_t n = u64();
  std::vector<std::string> v;
  if (!ok_ || n > d_.size()) {
    ok_ = false;
    return v;
  }
  v.reserve(n);
  for (uint64_t i = 0; i < n && ok_; ++i) v.push_back(str());
  return v;
}

int send_message(int sock, const std::string& body, const int* fds, int nfds) {
  iovec iov{const_cast<char*>(body.data()), body.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxMessageFds)];
  if (nfds > kMaxMessageFds) return EINVAL;
  if (nfds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  for (;;) {
    ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

int recv_message(int sock, std::string& body, std::vector<int>& fds, int flags) {
  ssize_t len;
  do {
    len = ::recv(sock, nullptr, 0, flags | MSG_PEEK | MSG_TRUNC);
  } while (len < 0 && errno == EINTR);
  if (len < 0) {
    body.clear();
    return errno;
  }
  body.resize(len > 0 ? static_cast<size_t>(len) : 1);
  iovec iov{body.data(), body.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxMessageFds)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    body.clear();
    return errno;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        fds.push_back(fd);
      }
    }
  }
  body.resize(static_cast<size_t>(n));
  if (n == 0) return -1;
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return EMSGSIZE;
  return 0;
}

}  // namespace boxcar::executors::native
