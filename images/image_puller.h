// pull_image: a reference -> a PulledImage in the store. The manifest is resolved, the config
// fetched, the layers the store lacks downloaded in parallel (each verified while it streams,
// unpacked once), and the image recorded. With `refresh` false an image already recorded for
// the reference is used as it is, without asking the registry (Docker's pull policy
// "if-not-present"; a digest reference never changes anyway).
#pragma once

#include "base/result.h"
#include "images/image.h"
#include "images/layer_store.h"
#include "images/reference.h"
#include "images/registry_client.h"

namespace boxcar::images {

struct PullOptions {
  bool refresh = false;
  size_t parallel_layers = 4;
};

// Blocking; call it off the io_context thread. Errors name the image.
Result<PulledImage> pull_image(LayerStore& store, RegistryClient& registry, const Reference& ref,
                               const PullOptions& options, const PullProgress& progress);

}  // namespace boxcar::images
