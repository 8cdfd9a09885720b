// ImageSource: how a run gets the images its steps and services name, pulled off the io_context
// thread. The engine asks once per run, for every distinct reference at once (so pulls overlap
// and an unknown image fails before any step waits on it), and holds the answer for the run.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "images/image.h"

namespace boxcar::agent {

// One reference's image, with whatever keeps it from being collected while the run uses it.
struct RunImage {
  images::PulledImage image;
  std::shared_ptr<void> lease;
};

// By the reference as the pipeline wrote it (after matrix expansion): the image or why not.
using RunImages = std::map<std::string, Result<RunImage>>;

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // Resolves every reference in `refs`; `done` is called once, on the io_context the source was
  // made with, unless the returned handle is destroyed first (then never).
  virtual std::shared_ptr<void> fetch(std::vector<std::string> refs, std::function<void(RunImages)> done) = 0;
};


}  // namespace boxcar::agent
