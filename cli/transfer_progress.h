// TransferProgress: a download's or upload's progress bar on stderr ("[#####-----]  48%  120.0 MiB
// / 250.0 MiB"), redrawn at most 10 times a second; nothing at all when stderr is not a terminal.
#pragma once

#include <chrono>
#include <cstdint>

namespace boxcar::cli {

class TransferProgress {
 public:
  // `total` 0: unknown (the bar shows the bytes only).
  TransferProgress(uint64_t total, bool enabled) : total_(total), enabled_(enabled) {}
  void add(uint64_t n) { set(done_ + n); }
  void set(uint64_t done);
  void set_total(uint64_t total) { total_ = total; }
  // The last drawing and its newline.
  void finish();

 private:
  void draw();
  uint64_t total_, done_ = 0;
  bool enabled_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace boxcar::cli
