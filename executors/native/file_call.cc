#include "executors/native/file_call.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "executors/native/file_wire.h"

namespace boxcar::executors::native {

namespace {

bool bad_name(const std::string& name) {
  return name.empty() || name == "." || name == ".." || name.size() > 255 ||
         name.find('/') != std::string::npos || name.find('\0') != std::string::npos;
}

bool bad_path(const std::string& path) {
  return path.empty() || path[0] != '/' || path.size() > 4096 || path.find('\0') != std::string::npos;
}

Status check_entry(const FileEntry& e, const char* what) {
  if (bad_name(e.name)) return Error{std::string("the file helper sent a bad ") + what + " name", EPROTO};
  if (bad_path(e.path)) return Error{std::string("the file helper sent a bad ") + what + " path", EPROTO};
  if (e.target.size() > 4096 || e.target.find('\0') != std::string::npos) {
    return Error{std::string("the file helper sent a bad ") + what + " link target", EPROTO};
  }
  return {};
}

}  // namespace

Status check_file_reply(const FileRequest& request, const FileReply& reply) {
  if (reply.err < 0 || reply.err > 4095) return Error{"the file helper sent a bad errno", EPROTO};
  if (reply.message.size() > 8192) return Error{"the file helper sent an oversized message", EPROTO};
  if (reply.err != 0) return {};
  if (reply.entries.size() > std::min(request.limit, kMaxFileEntries)) {
    return Error{"the file helper sent more entries than asked for", EPROTO};
  }
  for (const auto& e : reply.entries) {
    if (Status s = check_entry(e, "entry"); !s) return s;
  }
  bool has_entry = request.op == FileOp::stat || request.op == FileOp::open_read || request.op == FileOp::open_write;
  // stat of "/" names nothing; every other entry has a name.
  if (has_entry && !(request.op == FileOp::stat && request.path == "/")) {
    if (Status s = check_entry(reply.entry, "file"); !s) return s;
  }
  return {};
}

FileCall::FileCall(boost::asio::io_context& io, unique_fd sock, FileRequest request, Millis timeout, Done done)
    : sock_(io, sock.release()), timer_(io), request_(std::move(request)), timeout_(timeout), done_(std::move(done)) {}

void FileCall::start() {
  auto self = shared_from_this();
  timer_.expires_after(timeout_);
  timer_.async_wait([self](boost::system::error_code ec) {
    if (!ec) self->fail("the file helper did not answer within " + std::to_string(self->timeout_.count()) + " ms", ETIMEDOUT);
  });
  read();
}

void FileCall::read() {
  auto self = shared_from_this();
  sock_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [self](boost::system::error_code ec) {
    if (self->over_) return;
    if (ec) return self->fail("reading the file helper's reply: " + ec.message(), EIO);
    char buf[65536];
    for (;;) {
      iovec iov{buf, sizeof buf};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = ::recvmsg(self->sock_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) return self->fail(std::string("reading the file helper's reply: ") + std::strerror(errno), errno);
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
          self->fds_.emplace_back(fd);
        }
      }
      if (msg.msg_flags & MSG_CTRUNC) return self->fail("the file helper sent too many descriptors", EPROTO);
      if (self->fds_.size() > 2) return self->fail("the file helper sent too many descriptors", EPROTO);
      if (n == 0) return self->finish();
      self->data_.append(buf, static_cast<size_t>(n));
      if (self->data_.size() > kMaxFileReply + 1) {
        return self->fail("the file helper's reply is over " + std::to_string(kMaxFileReply) + " bytes", EMSGSIZE);
      }
    }
    self->read();
  });
}

void FileCall::fail(std::string message, int err) {
  if (over_) return;
  over_ = true;
  timer_.cancel();
  // Dead for sure before anyone hears about it: a stopped helper ignores everything else.
  if (!fds_.empty()) ::syscall(SYS_pidfd_send_signal, fds_[0].get(), SIGKILL, nullptr, 0);
  boost::system::error_code ignored;
  sock_.close(ignored);
  fds_.clear();
  auto done = std::move(done_);
  done(Error{std::move(message), err});
}

namespace {

// Kernel interface file systems: their files are "regular" to fstat, but a read or a write may
// be judged by the credentials of whoever does it, and the agent (host root) is the one that
// reads and writes the descriptor. /files/proc/<pid>/oom_score_adj?append=1 would otherwise let
// a sandbox exempt its processes from the OOM killer.
bool kernel_interface(int fd) {
  struct statfs fs;
  if (::fstatfs(fd, &fs) != 0) return true;
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0x9fa0:      // proc
    case 0x62656572:  // sysfs
    case 0x27e0eb:    // cgroup
    case 0x63677270:  // cgroup2
    case 0x64626720:  // debugfs
    case 0x74726163:  // tracefs
    case 0x73636673:  // securityfs
    case 0xcafe4a11:  // bpf
    case 0xf97cff8c:  // selinuxfs
    case 0x62656570:  // configfs
    case 0xde5e81e4:  // efivarfs
    case 0x6165676c:  // pstore
    case 0x1cd1:      // devpts
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<FileReply> FileCall::parse() {
  if (data_.empty() || data_[0] != 'P' || fds_.empty()) return Error{"the file helper ended without answering", EIO};
  FileReply reply;
  bool has_fd = false;
  if (!decode_file_reply(std::string_view(data_).substr(1), reply, has_fd)) {
    return Error{"the file helper sent a malformed reply", EPROTO};
  }
  if (Status s = check_file_reply(request_, reply); !s) return s.error();
  const bool wants_fd = reply.err == 0 && (request_.op == FileOp::open_read || request_.op == FileOp::open_write);
  if (has_fd != wants_fd || fds_.size() != (wants_fd ? 2u : 1u)) {
    return Error{"the file helper sent a descriptor where none belongs, or none where one does", EPROTO};
  }
  if (wants_fd) {
    // The descriptor must be what was asked for: a regular file, open for reading or writing.
    unique_fd fd = std::move(fds_[1]);
    struct stat st;
    int mode = ::fcntl(fd.get(), F_GETFL);
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || mode < 0) {
      return Error{"the file helper passed something other than a regular file", EPROTO};
    }
    int acc = mode & O_ACCMODE;
    if (request_.op == FileOp::open_read ? acc != O_RDONLY : acc != O_WRONLY) {
      return Error{"the file helper passed a file open the wrong way", EPROTO};
    }
    if (mode & O_PATH) return Error{"the file helper passed an O_PATH descriptor", EPROTO};
    if (kernel_interface(fd.get())) {
      reply.err = EACCES;
      reply.message = request_.path + ": a kernel interface file (/proc, /sys): read or write it with exec inside the sandbox";
      return reply;
    }
    reply.fd = std::move(fd);
  }
  return reply;
}

void FileCall::finish() {
  if (over_) return;
  auto result = parse();
  if (!result) return fail(result.error().message, result.error().err);
  over_ = true;
  timer_.cancel();
  boost::system::error_code ignored;
  sock_.close(ignored);
  auto done = std::move(done_);
  done(std::move(result));
}

}  // namespace boxcar::executors::native
