// The image flags of `boxcar run`, `agent`, `serve` and `image`: where the layer store is
// (--image-cache), how big it may grow (--image-cache-size), which registries are plain http
// (--insecure-registry, repeatable) and whose credentials to use (--registry-auth). Parsed and
// checked in one place, so the commands agree.
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include "agent/image_fetcher.h"
#include "base/result.h"
#include "cli/flags.h"

namespace boxcar::cli {

inline constexpr const char* kImageFlagsUsage =
    "  images: --image-cache DIR (run, image: $XDG_CACHE_HOME/boxcar/images or\n"
    "  ~/.cache/boxcar/images; agent, serve: <data>/images) --image-cache-size SIZE (20GiB)\n"
    "  --insecure-registry HOST:PORT (plain http; repeatable) --registry-auth FILE (a Docker\n"
    "  config.json; default $DOCKER_CONFIG/config.json or ~/.docker/config.json)\n";

std::vector<FlagSpec> with_image_flags(std::vector<FlagSpec> specs);

// The cache of a user's own runs: $XDG_CACHE_HOME/boxcar/images, else ~/.cache/boxcar/images.
std::filesystem::path default_image_cache();

// The options the flags give; `cache` is the directory used without --image-cache. Errors name
// the flag: a size that is not one, an insecure registry that is not HOST[:PORT], an auth file
// that does not exist.
Result<agent::ImageFetcherOptions> read_image_options(const ParsedFlags& flags, const std::filesystem::path& cache);

}  // namespace boxcar::cli
