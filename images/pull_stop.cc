#include "images/pull_stop.h"

namespace boxcar::images {

PullStop PullStop::after(Millis timeout, const std::atomic<bool>* cancel) {
  PullStop s;
  s.cancel = cancel;
  if (timeout.count() > 0) {
    s.timeout = timeout;
    s.deadline = Clock::now() + timeout;
  }
  return s;
}

Error stop_error(const PullStop& stop, const std::string& image) {
  std::string who = image.empty() ? "" : "image \"" + image + "\": ";
  if (stop.cancelled()) {
    return Error{who + "the pull was cancelled (nobody waits for the image any more)", 0, ErrorCode::conflict};
  }
  return Error{who + "the pull did not finish within " + format_duration(stop.timeout) +
                   " (the image pull timeout); the registry is too slow or the image too large",
               0, ErrorCode::limit_exceeded, "image_pull_timeout"};
}

}  // namespace boxcar::images
