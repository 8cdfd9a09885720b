// PullStop: what ends a pull early. `cancel` is set by whoever no longer wants the image (a
// cancelled run, a fetcher going away) and `deadline` bounds the whole pull, however slowly a
// registry trickles its bytes (the per-request timeout only bounds one silence). The registry
// client checks it as data arrives, between tries and while it waits for an answer; the
// unpacker between a layer's entries.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "base/duration.h"
#include "base/result.h"

namespace boxcar::images {

struct PullStop {
  using Clock = std::chrono::steady_clock;
  const std::atomic<bool>* cancel = nullptr;  // may be null: never cancelled
  Clock::time_point deadline = Clock::time_point::max();
  Millis timeout{0};  // what set `deadline`, for the error's text

  // A stop `timeout` from now (0: no deadline).
  static PullStop after(Millis timeout, const std::atomic<bool>* cancel = nullptr);

  bool cancelled() const { return cancel != nullptr && cancel->load(); }
  bool expired() const { return Clock::now() >= deadline; }
  bool stopped() const { return cancelled() || expired(); }
};

// Why `stop` ended the pull of `image` ("" names none): cancelled (conflict), or past its
// deadline (limit_exceeded, subject "image_pull_timeout").
Error stop_error(const PullStop& stop, const std::string& image);

}  // namespace boxcar::images
