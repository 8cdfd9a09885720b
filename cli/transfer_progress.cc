#include "cli/transfer_progress.h"

#include <cstdio>
#include <string>

#include "base/size.h"

namespace boxcar::cli {

void TransferProgress::set(uint64_t done) {
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  if (enabled_ && now - last_ > std::chrono::milliseconds(100)) {
    last_ = now;
    draw();
  }
}

void TransferProgress::finish() {
  if (!enabled_) return;
  draw();
  std::fputc('\n', stderr);
}

void TransferProgress::draw() {
  if (total_ == 0) {
    std::fprintf(stderr, "\r%s   ", format_size(done_).c_str());
  } else {
    int pct = static_cast<int>(std::min<uint64_t>(done_, total_) * 100 / total_);
    int filled = pct * 30 / 100;
    std::fprintf(stderr, "\r[%s%s] %3d%%  %s / %s   ", std::string(filled, '#').c_str(),
                 std::string(30 - filled, '-').c_str(), pct, format_size(done_).c_str(),
                 format_size(total_).c_str());
  }
  std::fflush(stderr);
}

}  // namespace boxcar::cli
