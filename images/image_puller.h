// pull_image: a reference -> a PulledImage in the store. The manifest is resolved, the config
// fetched, the layers the store lacks downloaded in parallel (each verified while it streams,
// unpacked once), and the image recorded. With `refresh` false an image already recorded for
// the reference is used as it is, without asking the registry (Docker's pull policy
// "if-not-present"; a digest reference never changes anyway).
//
// Limits, checked before any layer is fetched: no layer's declared size, nor their sum, may be
// over the store's cap; the layers' unpacked bytes together stay under it too (the layers
// share one budget while they unpack in parallel). A layer the manifest lists more than once
// is used once, at its topmost place (overlayfs refuses the same lower twice; the filesystem
// it makes is the same).
#pragma once

#include <atomic>

#include "base/duration.h"
#include "base/result.h"
#include "images/image.h"
#include "images/layer_store.h"
#include "images/reference.h"
#include "images/registry_client.h"

namespace boxcar::images {

inline constexpr Millis kDefaultPullTimeout{30 * 60'000};

struct PullOptions {
  bool refresh = false;
  size_t parallel_layers = 4;
  // The whole pull (every request, download and unpack) ends with an Error past this, however
  // slowly the registry trickles (--image-pull-timeout). 0: no bound.
  Millis timeout = kDefaultPullTimeout;
  // Set by whoever no longer wants the image (a cancelled run): the pull ends soon after, its
  // downloads and unpacking included (stop_error()). May be null.
  const std::atomic<bool>* cancel = nullptr;
};

// Blocking; call it off the io_context thread. Errors name the image. With `lease`, the image
// comes back leased (its record and each of its layers held, see ImageLease), and was held from
// before find() looked or the first layer was ensured: no other process's collector or prune
// can take it in between. Without, nothing is held once it returns.
Result<PulledImage> pull_image(LayerStore& store, RegistryClient& registry, const Reference& ref,
                               const PullOptions& options, const PullProgress& progress, ImageLease* lease = nullptr);

}  // namespace boxcar::images
