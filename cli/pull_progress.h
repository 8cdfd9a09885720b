// PullProgressPrinter: how `boxcar image pull` (and `boxcar run` while it pulls) shows a pull:
// on a terminal a line per layer, redrawn in place as bytes arrive; otherwise plain lines, one
// per layer started and finished; with --json one JSON object per PullEvent line.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "images/image.h"

namespace boxcar::cli {

// The event as JSON: {"event": "layer_progress", "reference": ..., "layer": ..., ...}; empty
// and zero fields are left out.
boost::json::object pull_event_json(const images::PullEvent& e);

class PullProgressPrinter {
 public:
  enum class Mode { terminal, plain, json };
  PullProgressPrinter(std::FILE* out, Mode mode) : out_(out), mode_(mode) {}

  // Thread-safe: the puller calls it from its layer threads.
  void operator()(const images::PullEvent& e);

  // What a command picks: json when asked, terminal when `out` is one (and TERM is not "dumb").
  static Mode mode_for(std::FILE* out, bool json);

 private:
  struct Layer {
    std::string digest;
    std::string state;  // "waiting", "downloading", "unpacking", "cached", "done"
    uint64_t done = 0;
    uint64_t total = 0;
  };
  Layer& layer(const std::string& digest);
  void redraw();

  std::FILE* out_;
  Mode mode_;
  std::mutex mu_;
  std::vector<Layer> layers_;
  size_t drawn_ = 0;  // lines the last redraw printed
};

}  // namespace boxcar::cli
