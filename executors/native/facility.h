// Facility: how one setup step in a sandbox's child reports failure. The child after fork()
// has no caller to return to, so each step returns {facility, errno} and contain() sends it
// to the agent, which turns it into Outcome::setup_error.
#pragma once

#include <cerrno>

namespace boxcar::executors::native {

struct Failure {
  const char* facility = nullptr;  // nullptr: success
  int err = 0;

  explicit operator bool() const { return facility != nullptr; }
};

inline Failure ok() { return {}; }
// The facility named `what` failed with the current errno.
inline Failure fail(const char* what) { return Failure{what, errno ? errno : EIO}; }
inline Failure fail(const char* what, int err) { return Failure{what, err}; }

#define BOXCAR_TRY(expr)         \
  do {                           \
    ::boxcar::executors::native::Failure f_ = (expr); \
    if (f_) return f_;           \
  } while (0)

}  // namespace boxcar::executors::native
