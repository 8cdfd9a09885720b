#include "executors/outcome.h"

#include <string.h>

namespace boxcar::executors {

const char* to_string(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::ok:
      return "ok";
    case Outcome::Kind::failed:
      return "failed";
    case Outcome::Kind::timeout:
      return "timeout";
    case Outcome::Kind::oom:
      return "oom";
    case Outcome::Kind::signaled:
      return "signaled";
    case Outcome::Kind::cancelled:
      return "cancelled";
    case Outcome::Kind::setup_error:
      return "setup_error";
    case Outcome::Kind::quota_exceeded:
      return "quota_exceeded";
  }
  return "unknown";
}

namespace {

// strerrordesc_np and sigabbrev_np are untranslated and thread-safe, unlike strerror and
// strsignal: summaries read the same whatever the agent's locale.
std::string error_text(int err) {
  const char* text = ::strerrordesc_np(err);
  return text ? text : "errno " + std::to_string(err);
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace

std::string describe(const Outcome& o) {
  switch (o.kind) {
    case Outcome::Kind::ok:
      return "ok";
    case Outcome::Kind::failed:
      return "exit code " + std::to_string(o.exit_code);
    case Outcome::Kind::signaled:
      return "killed by " + signal_name(o.signal);
    case Outcome::Kind::timeout:
      return "timed out";
    case Outcome::Kind::oom:
      return "out of memory";
    case Outcome::Kind::cancelled:
      return "cancelled";
    case Outcome::Kind::quota_exceeded:
      return "disk quota exceeded";
    case Outcome::Kind::setup_error: {
      std::string text = "setup failed";
      if (!o.facility.empty()) text += ": " + o.facility;
      if (o.err != 0) text += ": " + error_text(o.err);
      if (!o.message.empty()) text += " (" + o.message + ")";
      return text;
    }
  }
  return to_string(o.kind);
}

}  // namespace boxcar::executors
