// ImageFetcher: the ImageSource of `boxcar run` and of an agent: the machine's layer store and a
// registry client, pulling on threads of its own so the io_context never waits on a registry.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "agent/image_source.h"
#include "base/result.h"
#include "images/image.h"
#include "images/layer_store.h"
#include "images/registry_client.h"

namespace boxcar::agent {

struct ImageFetcherOptions {
  images::StoreOptions store;
  images::RegistryOptions registry;
  // Every pull's progress, from the pulling threads (a terminal's progress display); may be empty.
  images::PullProgress progress;
};

class ImageFetcher : public ImageSource {
 public:
  // Opens the store (creating it) and checks the registry options (auth file, CA bundle).
  static Result<std::unique_ptr<ImageFetcher>> make(boost::asio::io_context& io, ImageFetcherOptions options);
  // Pulls still running finish on their threads; their answers are dropped.
  ~ImageFetcher() override;

  std::shared_ptr<void> fetch(std::vector<std::string> refs, std::function<void(RunImages)> done) override;

 private:
  struct Shared;
  explicit ImageFetcher(std::shared_ptr<Shared> shared);
  std::shared_ptr<Shared> shared_;
};

}  // namespace boxcar::agent
