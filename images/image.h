// What an image is once pulled: its reference, its digest, its unpacked layers and the parts of
// its config a step uses. Shared by the registry client, the layer store, the puller and the
// engine; no I/O here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace boxcar::images {

// The runtime parts of an image's config (OCI image-spec "config", Docker's "container_config"
// is ignored). Absent fields are empty.
struct ImageConfig {
  std::vector<std::string> env;         // "NAME=value", the image's own Env (PATH usually among them)
  std::string user;                     // "", "name", "uid", "name:group", "uid:gid"
  std::vector<std::string> entrypoint;  // Entrypoint
  std::vector<std::string> cmd;         // Cmd
  std::string working_dir;              // WorkingDir (ignored for `run` steps)
};

// A pulled image, ready to be a root filesystem.
struct PulledImage {
  std::string reference;  // canonical: "docker.io/library/node:20", "reg:5000/x/y@sha256:..."
  std::string digest;     // "sha256:<hex>" of the platform manifest used
  // The unpacked layer directories, lowest (base) layer first: overlayfs lowers as the
  // executor composes them. Whiteouts inside are overlayfs whiteouts (char 0/0) and opaque
  // directories carry trusted.overlay.opaque=y.
  std::vector<std::filesystem::path> layers;
  ImageConfig config;
  uint64_t size = 0;  // bytes the layers take on disk (unpacked)
};

// Progress of a pull, for a progress bar on a terminal or `--json` events. Called from the
// pulling threads (the receiver serialises what it needs to).
struct PullEvent {
  enum class Kind {
    resolving,    // looking up the manifest of `reference`
    resolved,     // `digest` known; `layers_total` layers, `bytes_total` compressed bytes
    layer_start,  // downloading `layer` (a digest), `bytes_total` its size
    layer_progress,  // `bytes_done` of `bytes_total` of `layer` arrived
    layer_cached,    // `layer` already unpacked in the store: nothing fetched
    layer_unpacked,  // `layer` verified and unpacked
    retry,           // a request failed and is tried again; `message` says why
    done,            // the image is ready
  };
  Kind kind;
  std::string reference;
  std::string digest;
  std::string layer;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  size_t layers_total = 0;
  std::string message;
};
using PullProgress = std::function<void(const PullEvent&)>;

}  // namespace boxcar::images
