// OutputLog: a process's output spooled to logs/<proc>.log (outside the sandbox's view), so any
// client can read it from any offset while it is still written, and live followers get each chunk
// as it comes. On disk a chunk is a frame: 1 byte stream (0 out, 1 err), 4 bytes length (little
// endian), the bytes; an offset is a frame's position in the file, which is what SSE ids and
// X-Boxcar-Offset carry. The file stops at 64 MiB: later chunks are counted as dropped and still
// go to live followers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::sandboxes {

class OutputLog {
 public:
  static constexpr uint64_t kMaxFileBytes = 64ull << 20;
  static constexpr uint32_t kHeader = 5;

  struct Chunk {
    uint64_t offset = 0;  // where the frame starts (dropped chunks: the file's end)
    uint64_t next = 0;    // where the following frame starts: the resume point after this one
    int stream = 0;
    std::string data;
  };

  static Result<std::unique_ptr<OutputLog>> open(const std::filesystem::path& file);

  void append(int stream, std::string_view data);
  // Chunks from `offset` (a frame start) up to about `max_bytes` of data; an Error when `offset`
  // is past the end or not where a frame starts.
  Result<std::vector<Chunk>> read(uint64_t offset, size_t max_bytes) const;
  uint64_t end() const { return end_; }
  uint64_t output_bytes() const { return output_bytes_; }
  uint64_t dropped() const { return dropped_; }

  uint64_t subscribe(std::function<void(const Chunk&)> on_chunk);
  void unsubscribe(uint64_t id) { subscribers_.erase(id); }

 private:
  unique_fd fd_;
  uint64_t end_ = 0;
  uint64_t output_bytes_ = 0;
  uint64_t dropped_ = 0;
  uint64_t next_subscriber_ = 1;
  std::map<uint64_t, std::function<void(const Chunk&)>> subscribers_;
};

}  // namespace boxcar::sandboxes
