// SandboxState::file_op: sends the request to init with a fresh reply socket, and hands that
// socket to a FileCall (file_call.h), which reads, checks and times the helper's answer.
#include <sys/socket.h>

#include <cstring>

#include <boost/asio/post.hpp>

#include "executors/native/control_channel.h"
#include "executors/native/file_call.h"
#include "executors/native/file_wire.h"
#include "executors/native/sandbox_state.h"

namespace boxcar::executors::native {

void SandboxState::file_op(FileRequest request, std::function<void(Result<FileReply>)> done) {
  auto answer = [this, &done](Error error) {
    asio::post(io_, [done = std::move(done), error = std::move(error)] { done(error); });
  };
  if (destroyed_ || setup_failure_ || init_dead_ || stop_reason_ || oom_hit_ || !ctl_) {
    return answer(Error{"the sandbox is not running", ESRCH});
  }
  request.limit = std::min(request.limit, kMaxFileEntries);
  std::string body = encode_file_request(request);
  if (body.size() > kMaxMessage) return answer(Error{"file request too large", E2BIG});
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return answer(Error{std::string("socketpair: ") + std::strerror(errno), errno});
  }
  unique_fd mine(sv[0]), theirs(sv[1]);
  int fd = theirs.get();
  if (int rc = send_message(ctl_->native_handle(), body, &fd, 1)) {
    return answer(Error{std::string("file helper: the sandbox's init is gone: ") + std::strerror(rc), rc});
  }
  theirs.reset();  // init holds its own copy now: the reply ends when the helper's does
  auto call = std::make_shared<FileCall>(io_, std::move(mine), std::move(request), shared_->options.file_op_timeout,
                                         std::move(done));
  call->start();
}

}  // namespace boxcar::executors::native
