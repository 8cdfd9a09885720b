#include "images/image_puller.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "base/size.h"

namespace boxcar::images {

namespace {

// A layer_progress event at most every this many bytes (or 1% of the layer): a progress bar
// needs no more, and `--json` stays a few hundred lines for a large layer.
constexpr uint64_t kProgressStep = 256 << 10;

PullEvent event(PullEvent::Kind kind, std::string layer = {}, uint64_t done = 0, uint64_t total = 0) {
  PullEvent e{};
  e.kind = kind;
  e.layer = std::move(layer);
  e.bytes_done = done;
  e.bytes_total = total;
  return e;
}

Error about(const std::string& image, Error e) {
  if (e.message.find(image) == std::string::npos) e.message = "image \"" + image + "\": " + e.message;
  return e;
}

// Each layer once, at its topmost place: a lower listed again above changes nothing, since the
// upper copy covers it whole (images with repeated empty layers exist).
std::vector<Descriptor> topmost(const std::vector<Descriptor>& layers) {
  std::vector<Descriptor> out;
  std::set<std::string> seen;
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    if (seen.insert(it->digest).second) out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

// What the manifest declares, against the cap, before a byte is fetched: a manifest may claim a
// 2 TB layer, or 200 layers of 19 GiB.
Status check_declared(const std::string& image, const std::vector<Descriptor>& layers, uint64_t cap) {
  uint64_t total = 0;
  for (const auto& d : layers) {
    if (d.size > cap) {
      return Error{"image \"" + image + "\": layer " + d.digest + " declares " + format_size(d.size) +
                       ", more than the image cache's size cap (" + format_size(cap) +
                       "); the image is refused: raise the cap or use a smaller image",
                   0, ErrorCode::limit_exceeded, "image_cache_size"};
    }
    total += d.size;
    if (total > cap) {
      return Error{"image \"" + image + "\": its " + std::to_string(layers.size()) + " layers declare more than " +
                       "the image cache's size cap (" + format_size(cap) + ") together; the image is refused: " +
                       "raise the cap or use a smaller image",
                   0, ErrorCode::limit_exceeded, "image_cache_size"};
    }
  }
  return {};
}

}  // namespace

Result<PulledImage> pull_image(LayerStore& store, RegistryClient& registry, const Reference& ref,
                               const PullOptions& options, const PullProgress& progress, ImageLease* lease) {
  const std::string image = ref.canonical();
  const PullStop stop = PullStop::after(options.timeout, options.cancel);
  // Held from the start: what find() or ensure_layer() hands back is pinned into it at once.
  ImageLease held = store.lease(image);
  std::mutex emit_mu;
  auto emit = [&](PullEvent e) {
    if (!progress) return;
    e.reference = image;
    std::lock_guard lock(emit_mu);
    progress(e);
  };
  if (!options.refresh) {
    if (auto found = store.find(image, &held)) {
      PullEvent e = event(PullEvent::Kind::done, {}, found->size);
      e.digest = found->digest;
      emit(std::move(e));
      if (lease) *lease = std::move(held);
      return *found;
    }
  }
  emit(event(PullEvent::Kind::resolving));
  auto manifest = registry.resolve(ref, stop);
  if (!manifest) return manifest.error();
  const std::vector<Descriptor> layers = topmost(manifest->layers);
  if (auto s = check_declared(image, layers, store.options().max_bytes); !s.ok()) return s.error();
  uint64_t bytes_total = 0;
  for (const auto& l : layers) bytes_total += l.size;
  PullEvent resolved = event(PullEvent::Kind::resolved, {}, 0, bytes_total);
  resolved.digest = manifest->digest;
  resolved.layers_total = layers.size();
  emit(std::move(resolved));
  auto config = registry.fetch_config(ref, *manifest, stop);
  if (!config) return about(image, config.error());

  std::atomic<uint64_t> image_bytes{0};
  std::vector<ImageLease> pins(layers.size());
  std::vector<std::filesystem::path> dirs(layers.size());
  std::vector<std::optional<Error>> errors(layers.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto work = [&] {
    for (size_t i = next++; i < layers.size() && !failed; i = next++) {
      const Descriptor& d = layers[i];
      bool cached = false;
      uint64_t shown = 0;
      auto download = [&](int fd) -> Status {
        emit(event(PullEvent::Kind::layer_start, d.digest, 0, d.size));
        shown = 0;
        return registry.fetch_blob(
            ref, d, fd,
            [&](uint64_t done, uint64_t total) {
              if (done != total && done - shown < std::max(kProgressStep, total / 100)) return;
              shown = done;
              emit(event(PullEvent::Kind::layer_progress, d.digest, done, total));
            },
            stop);
      };
      auto dir = store.ensure_layer(d.digest, d.media_type, download, pins[i], &cached,
                                    LayerLimits{d.size, &image_bytes, &stop});
      if (!dir) {
        errors[i] = about(image, dir.error());
        failed = true;
        return;
      }
      dirs[i] = *dir;
      emit(event(cached ? PullEvent::Kind::layer_cached : PullEvent::Kind::layer_unpacked, d.digest, d.size, d.size));
    }
  };
  size_t threads = std::clamp<size_t>(options.parallel_layers, 1, std::max<size_t>(layers.size(), 1));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  for (auto& e : errors) {
    if (e) return *e;
  }
  for (auto& p : pins) held.take_pins(std::move(p));

  PulledImage pulled;
  pulled.reference = image;
  pulled.digest = manifest->digest;
  pulled.layers = std::move(dirs);
  pulled.config = std::move(*config);
  if (auto recorded = store.record(pulled); !recorded) return about(image, recorded.error());
  if (auto found = store.find(image)) pulled.size = found->size;
  PullEvent done = event(PullEvent::Kind::done, {}, pulled.size);
  done.digest = pulled.digest;
  emit(std::move(done));
  if (lease) *lease = std::move(held);
  return pulled;
}

}  // namespace boxcar::images
