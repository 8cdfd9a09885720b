// LayerStore: the machine's content-addressed image cache, shared by every job (and every
// agent process) on it. Each layer is downloaded and unpacked once, into layers/<hex>/ (the
// directory an overlayfs lower uses), even when two jobs pull it at once; image records map a
// canonical reference to its manifest digest, config and layers. Files inside layers belong to
// the sandboxes' unprivileged id range on the host's disk and never carry setuid/setgid bits.
// An LRU collector keeps the store under its size cap, sparing images a running step holds and
// every layer a lease or a pull in progress pins (a refreshed record may no longer name the
// layers a running step still mounts).
//
//   <dir>/layers/<hex>/fs/     unpacked layer: the directory an overlayfs lower uses
//   <dir>/layers/<hex>/size    its unpacked bytes, for the size cap (one rename commits both)
//   <dir>/images/<hex>.json    one record per reference (hex = sha256 of the reference); the
//                              file's mtime is the image's last use
//   <dir>/locks/               flock files: <hex>.lock (one download of a layer), <hex>.pin (a
//                              pull or a running step uses the layer), image-<hex>.lock (leases),
//                              gc.lock
//   <dir>/tmp/                 downloads, unpacks and removals in progress
//
// The store's own directories are 0700 root (the layers' insides belong to the sandbox ids):
// overlayfs lowers are opened by the host root that mounts them,
// never by the sandbox's ids, so nothing below needs to be reachable by anyone else.
// Thread-safe; cross-process safety by flock (no lock is held across calls but leases and pins).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "images/image.h"
#include "images/pull_stop.h"

namespace boxcar::images {

struct StoreOptions {
  std::filesystem::path dir;
  uint64_t max_bytes = 20ull << 30;  // --image-cache-size
  // Owners of unpacked files on the host's disk: an image's uid/gid N becomes id_base + N
  // (ids outside [0, id_count) become id_base + 65534, "nobody"). Equal to the sandboxes' range.
  uid_t id_base = 100000;
  uid_t id_count = 65536;
};

// One image in the store, as `boxcar image ls` shows it.
struct ImageRecord {
  PulledImage image;
  int64_t last_used = 0;  // unix seconds
};

// While held, the collector, remove() and prune() leave the image and its layers alone: a
// shared flock on its record's lock and one on each layer's pin. Each pull and each step holds
// its own, so two pulls sharing a layer never drop each other's pin.
class ImageLease {
 public:
  ImageLease() = default;
  explicit ImageLease(unique_fd record) : record_(std::move(record)) {}
  bool held() const { return static_cast<bool>(record_); }
  size_t layers_pinned() const { return pins_.size(); }
  // Takes over the pins of `other` (its record lock, if any, is dropped).
  void take_pins(ImageLease&& other) {
    for (auto& p : other.pins_) pins_.push_back(std::move(p));
    other.pins_.clear();
  }
  void add_pin(unique_fd pin) { pins_.push_back(std::move(pin)); }

 private:
  unique_fd record_;
  std::vector<unique_fd> pins_;
};

// What ensure_layer() may spend making a layer.
struct LayerLimits {
  // The blob's size as the manifest declares it: refused at once when over the cap, or over the
  // free space of the store's disk (statvfs), before any byte is downloaded. 0: unknown.
  uint64_t blob_size = 0;
  // The unpacked bytes of the image so far, shared by its layers (cached ones count their size
  // too): the image as a whole stays under the cap. Null: this layer alone.
  std::atomic<uint64_t>* image_bytes = nullptr;
  // A cancelled or overdue pull stops the download (the caller's `download` checks it) and the
  // unpacking between entries.
  const PullStop* stop = nullptr;
};

class LayerStore {
 public:
  // Creates the directories (0700 root) and removes what a dead process left in tmp/.
  static Result<std::unique_ptr<LayerStore>> open(StoreOptions options);
  virtual ~LayerStore() = default;

  virtual const StoreOptions& options() const = 0;

  // The image recorded for `canonical_reference` with every layer present, its last use
  // touched; nullopt when absent or incomplete. With `lease` (take it with lease() first), each
  // layer is pinned into it before it is looked at: what find() returns stays until the lease
  // is dropped, with no window for another process's prune.
  virtual std::optional<PulledImage> find(const std::string& canonical_reference, ImageLease* lease = nullptr) = 0;

  // The unpacked directory of layer `digest` ("sha256:<hex>"), making it first if needed:
  // under a per-digest lock (threads and processes), `download(fd)` writes the verified blob
  // into a temporary file, which is then unpacked (media type: tar, tar+gzip, tar+zstd; Docker
  // and OCI names) and renamed into place. A second caller for the same digest waits and reuses
  // it: one download. `cached` is set when nothing was downloaded. The layer's pin is added to
  // `lease` (prune and the collector spare it while the lease lives): a pull is safe from a
  // prune between its layers and its record, and a step from one while it runs.
  // Errors: over a limit of `limits` (limit_exceeded, subject image_cache_size; too little
  // free disk: unavailable), the download's own, or the unpacker's (images/unpack.h) prefixed
  // with the digest.
  virtual Result<std::filesystem::path> ensure_layer(const std::string& digest, const std::string& media_type,
                                                     const std::function<Status(int fd)>& download,
                                                     ImageLease& lease, bool* cached = nullptr,
                                                     const LayerLimits& limits = {}) = 0;

  // Records (or replaces) the image for its reference, sizes summed, last use now; then
  // collects garbage if the store is over its cap (never this image: it is about to be used;
  // never a layer a lease pins, such as those of a record this one replaced while a step runs).
  // Every layer must be one ensure_layer() returned; an Error otherwise.
  virtual Status record(const PulledImage& image) = 0;

  // Keeps the collector, remove() and prune() away from the image until the lease is dropped.
  // Take it before find()/pull and keep it for the step's life: a lease needs no record yet.
  virtual ImageLease lease(const std::string& canonical_reference) = 0;

  virtual std::vector<ImageRecord> list() = 0;
  // Removes the record (not_found when there is none; conflict while a lease holds it); its
  // layers go with the next prune.
  virtual Status remove(const std::string& canonical_reference) = 0;
  // Removes every layer no record refers to and no lease pins; returns the bytes freed.
  virtual Result<uint64_t> prune() = 0;
  // While the store is over max_bytes: removes the least recently used record that no lease
  // holds, then prunes. Returns the bytes freed.
  virtual Result<uint64_t> collect_garbage() = 0;
};

}  // namespace boxcar::images
