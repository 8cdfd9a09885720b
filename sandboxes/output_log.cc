#include "sandboxes/output_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace boxcar::sandboxes {

Result<std::unique_ptr<OutputLog>> OutputLog::open(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Error{"cannot create " + file.string() + ": " + std::strerror(errno), errno};
  // Read and written only through the descriptor: unlinked at once, the log's disk space goes
  // back when its process is removed (or the agent exits), whatever happens in between.
  ::unlink(file.c_str());
  auto log = std::make_unique<OutputLog>();
  log->fd_ = unique_fd(fd);
  return log;
}

void OutputLog::append(int stream, std::string_view data) {
  if (data.empty()) return;
  output_bytes_ += data.size();
  Chunk chunk{end_, end_, stream, std::string(data)};
  if (end_ + kHeader + data.size() <= kMaxFileBytes) {
    std::string frame(kHeader, '\0');
    frame[0] = static_cast<char>(stream);
    uint32_t n = static_cast<uint32_t>(data.size());
    for (int i = 0; i < 4; ++i) frame[1 + i] = static_cast<char>((n >> (8 * i)) & 0xff);
    frame.append(data);
    // A local file: written whole, at once (a short write is a full disk: the rest is dropped).
    ssize_t w = ::pwrite(fd_.get(), frame.data(), frame.size(), static_cast<off_t>(end_));
    if (w == static_cast<ssize_t>(frame.size())) {
      end_ += frame.size();
      chunk.next = end_;
    } else {
      dropped_ += data.size();
    }
  } else {
    dropped_ += data.size();
  }
  // Copied: a subscriber may unsubscribe itself (or another) while being called.
  auto subscribers = subscribers_;
  for (auto& [id, fn] : subscribers) {
    if (subscribers_.count(id)) fn(chunk);
  }
}

Result<std::vector<OutputLog::Chunk>> OutputLog::read(uint64_t offset, size_t max_bytes) const {
  std::vector<Chunk> out;
  if (offset > end_) return Error{"offset " + std::to_string(offset) + " is past the end (" + std::to_string(end_) + ")"};
  size_t taken = 0;
  while (offset < end_ && taken < max_bytes) {
    unsigned char head[kHeader];
    if (::pread(fd_.get(), head, kHeader, static_cast<off_t>(offset)) != kHeader) return Error{"cannot read the log"};
    uint32_t n = head[1] | (head[2] << 8) | (head[3] << 16) | (static_cast<uint32_t>(head[4]) << 24);
    if (head[0] > 1 || n == 0 || offset + kHeader + n > end_) {
      return Error{"offset " + std::to_string(offset) + " is not where a chunk starts (use an offset this API gave)"};
    }
    Chunk c{offset, offset + kHeader + n, head[0], std::string(n, '\0')};
    if (::pread(fd_.get(), c.data.data(), n, static_cast<off_t>(offset + kHeader)) != static_cast<ssize_t>(n)) {
      return Error{"cannot read the log"};
    }
    offset = c.next;
    taken += n;
    out.push_back(std::move(c));
  }
  return out;
}

uint64_t OutputLog::subscribe(std::function<void(const Chunk&)> on_chunk) {
  uint64_t id = next_subscriber_++;
  subscribers_[id] = std::move(on_chunk);
  return id;
}

}  // namespace boxcar::sandboxes
