// SandboxState::file_op and watch: send the request to init with a fresh socket, and hand that
// socket to a FileCall (file_call.h) or WatchCall (watch_call.h), which reads and checks what the
// helper sends.
#include <sys/socket.h>

#include <cstring>

#include <boost/asio/post.hpp>

#include "executors/native/control_channel.h"
#include "executors/native/file_call.h"
#include "executors/native/file_wire.h"
#include "executors/native/sandbox_state.h"
#include "executors/native/watch_call.h"
#include "executors/native/watch_wire.h"

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

Result<std::unique_ptr<WatchHandle>> SandboxState::watch(const WatchRequest& request, WatchHandlers handlers) {
  if (destroyed_ || setup_failure_ || init_dead_ || stop_reason_ || oom_hit_ || !ctl_) {
    return Error{"the sandbox is not running", ESRCH};
  }
  std::string body = encode_watch_request(request);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return Error{std::string("socketpair: ") + std::strerror(errno), errno};
  }
  unique_fd mine(sv[0]), theirs(sv[1]);
  int fd = theirs.get();
  if (int rc = send_message(ctl_->native_handle(), body, &fd, 1)) {
    return Error{std::string("watch helper: the sandbox's init is gone: ") + std::strerror(rc), rc};
  }
  theirs.reset();  // init holds its own copy until it forked the helper: then only the helper does
  auto call = std::make_shared<WatchCall>(io_, std::move(mine), request, shared_->options.file_op_timeout,
                                          std::move(handlers));
  call->start();
  return std::unique_ptr<WatchHandle>(std::make_unique<WatchCallHandle>(std::move(call)));
}

}  // namespace boxcar::executors::native
