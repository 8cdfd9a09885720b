// The image flags of `boxcar image`, `run`, `agent` and `serve`: where the layer store lives
// (--image-cache, --image-cache-size), how registries are reached (--insecure-registry,
// --registry-auth) and how long one pull may take (--image-pull-timeout). Parsed and checked
// in one place, so the commands agree.
#pragma once

#include <filesystem>
#include <vector>

#include "base/result.h"
#include "cli/flags.h"
#include "base/duration.h"
#include "images/image_puller.h"
#include "images/layer_store.h"
#include "images/registry_client.h"

namespace boxcar::cli {

// For the commands' usage texts.
inline constexpr const char* kImageFlagsUsage =
    "  images:\n"
    "  --image-cache DIR        the layer store (boxcar run, boxcar image: $XDG_CACHE_HOME/boxcar/images,\n"
    "                           else ~/.cache/boxcar/images; an agent: <data>/images)\n"
    "  --image-cache-size SIZE  least recently used images are removed past it; no image may be larger\n"
    "                           (20GiB)\n"
    "  --image-pull-timeout DURATION  one image's whole pull ends past it (30m)\n"
    "  --insecure-registry HOST:PORT  reach this registry over plain http (repeatable)\n"
    "  --registry-auth FILE     a Docker config.json with \"auths\" (default: $DOCKER_CONFIG/config.json,\n"
    "                           else ~/.docker/config.json)\n";

std::vector<FlagSpec> image_flag_specs();
// `specs` and the image flags: what a command passes to parse_flags.
std::vector<FlagSpec> with_image_flags(std::vector<FlagSpec> specs);

struct ImageSettings {
  images::StoreOptions store;
  images::RegistryOptions registry;
  Millis pull_timeout = images::kDefaultPullTimeout;
};

// $XDG_CACHE_HOME/boxcar/images, else $HOME/.cache/boxcar/images.
std::filesystem::path default_image_cache();

// The settings the flags give; `default_cache` when --image-cache is absent. Errors (usage)
// name the flag and what it takes: a size under 64MiB, a registry that is not HOST[:PORT], an
// auth file that does not exist, a pull timeout that is no duration of at least 1s.
Result<ImageSettings> read_image_flags(const ParsedFlags& flags, const std::filesystem::path& default_cache);

}  // namespace boxcar::cli
