// watch_wire: the records a sandbox's watch helper (init_watch.h) writes to the agent
// (watch_call.h) on its SOCK_STREAM socket, after the 'P' byte that carries its pidfd (as the
// file helper's does). Each record is [type][flags][length: 2 bytes, little endian][payload]:
//   'W'  watching: every watch is in place (no payload)
//   'C'  a change: flags = kind (WatchEvent::Kind) | 0x80 when a directory; payload = the path
//        relative to the watched directory ("" for itself)
//   'O'  the kernel's inotify queue overflowed (no payload)
//   'E'  the watched directory was deleted or moved away; the helper exits after it
//   'X'  it failed: payload = errno (2 bytes, little endian) + message; the helper exits
// The agent refuses anything else, or any payload over kMaxWatchPayload, and ends the watch.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "executors/watch_request.h"

namespace boxcar::executors::native {

constexpr size_t kMaxWatchPayload = 4096 + 2;
constexpr size_t kWatchHeader = 4;

// Msg::watch's body (type byte included) and back; false when malformed.
std::string encode_watch_request(const WatchRequest& request);
bool decode_watch_request(std::string_view body, WatchRequest& request);

std::string watch_record(char type, uint8_t flags, std::string_view payload = {});

// Whether `rel` is a path a change may name below the watched directory: "" or segments that
// are not "." or "..", no "//", no NUL, no leading or trailing '/', at most 4096 bytes.
bool valid_relative_path(std::string_view rel);

}  // namespace boxcar::executors::native
