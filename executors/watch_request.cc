#include "executors/watch_request.h"

namespace boxcar::executors {

const char* to_string(WatchEvent::Kind kind) {
  switch (kind) {
    case WatchEvent::Kind::create: return "create";
    case WatchEvent::Kind::modify: return "modify";
    case WatchEvent::Kind::remove: return "delete";
    case WatchEvent::Kind::move_from: return "move_from";
    case WatchEvent::Kind::move_to: return "move_to";
    case WatchEvent::Kind::attrib: return "attrib";
  }
  return "modify";
}

}  // namespace boxcar::executors
