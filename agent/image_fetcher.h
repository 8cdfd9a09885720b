// ImageFetcher: the ImageSource of `boxcar run` and of an agent: the machine's layer store and a
// registry client, pulling on threads of its own so the io_context never waits on a registry.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "agent/image_source.h"
#include "base/duration.h"
#include "base/result.h"
#include "images/image.h"
#include "images/image_puller.h"
#include "images/layer_store.h"
#include "images/registry_client.h"

namespace boxcar::agent {

struct ImageFetcherOptions {
  images::StoreOptions store;
  images::RegistryOptions registry;
  // Every pull's progress, from the pulling threads (a terminal's progress display); may be empty.
  images::PullProgress progress;
  // Bounds each pull as a whole (--image-pull-timeout); 0: none.
  Millis pull_timeout = images::kDefaultPullTimeout;
};

class ImageFetcher : public ImageSource {
 public:
  // Opens the store (creating it) and checks the registry options (auth file, CA bundle).
  static Result<std::unique_ptr<ImageFetcher>> make(boost::asio::io_context& io, ImageFetcherOptions options);
  // Pulls still running are cancelled (they stop downloading and unpacking soon after, on their
  // own threads); their answers are dropped.
  ~ImageFetcher() override;

  // Each image of `done` comes leased (record and layers, see images::ImageLease) from before the
  // store was looked at. Dropping the returned handle cancels the pulls still running.

  std::shared_ptr<void> fetch(std::vector<std::string> refs, std::function<void(RunImages)> done) override;

 private:
  struct Shared;
  explicit ImageFetcher(std::shared_ptr<Shared> shared);
  std::shared_ptr<Shared> shared_;
};

}  // namespace boxcar::agent
