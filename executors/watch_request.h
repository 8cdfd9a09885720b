// WatchRequest / WatchEvent: a live watch of a directory inside a sandbox (Sandbox::watch),
// done by a long-lived helper inside the sandbox with inotify, as the sandbox's root, the path
// resolved in the sandbox's own mount namespace (as file_request.h's are). The agent only reads
// the helper's records, which are untrusted: capped, validated, and a bad one ends the watch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"

namespace boxcar::executors {

struct WatchRequest {
  std::string path;        // absolute inside the sandbox, already checked (sandboxes/sandbox_path.h)
  bool recursive = false;  // also every directory below, including ones made later
};

struct WatchEvent {
  enum class Kind { create, modify, remove, move_from, move_to, attrib };
  Kind kind = Kind::modify;
  std::string path;  // absolute inside the sandbox: the watched path, "/", and a relative part
  bool is_dir = false;
};

const char* to_string(WatchEvent::Kind kind);

struct WatchHandlers {
  // The watch is in place (every directory of a recursive one added): events follow.
  std::function<void()> on_watching;
  std::function<void(WatchEvent)> on_event;
  // The kernel's queue overflowed inside the sandbox: some events are lost, their number unknown.
  std::function<void()> on_overflow;
  // Once, last: ok when the watched directory was deleted or moved away; an Error (errno in it)
  // when it could not be watched (ENOENT, ENOTDIR...), the helper misbehaved, or the sandbox
  // stopped.
  std::function<void(Status)> on_end;
};

// Destroying it ends the watch (the helper is killed) without calling any handler.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

}  // namespace boxcar::executors
