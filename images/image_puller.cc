#include "images/image_puller.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

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

}  // namespace

Result<PulledImage> pull_image(LayerStore& store, RegistryClient& registry, const Reference& ref,
                               const PullOptions& options, const PullProgress& progress) {
  const std::string image = ref.canonical();
  std::mutex emit_mu;
  auto emit = [&](PullEvent e) {
    if (!progress) return;
    e.reference = image;
    std::lock_guard lock(emit_mu);
    progress(e);
  };
  if (!options.refresh) {
    if (auto found = store.find(image)) {
      PullEvent e = event(PullEvent::Kind::done, {}, found->size);
      e.digest = found->digest;
      emit(std::move(e));
      return *found;
    }
  }
  emit(event(PullEvent::Kind::resolving));
  auto manifest = registry.resolve(ref);
  if (!manifest) return manifest.error();
  uint64_t bytes_total = 0;
  for (const auto& l : manifest->layers) bytes_total += l.size;
  PullEvent resolved = event(PullEvent::Kind::resolved, {}, 0, bytes_total);
  resolved.digest = manifest->digest;
  resolved.layers_total = manifest->layers.size();
  emit(std::move(resolved));
  auto config = registry.fetch_config(ref, *manifest);
  if (!config) return about(image, config.error());

  const auto& layers = manifest->layers;
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
        return registry.fetch_blob(ref, d, fd, [&](uint64_t done, uint64_t total) {
          if (done != total && done - shown < std::max(kProgressStep, total / 100)) return;
          shown = done;
          emit(event(PullEvent::Kind::layer_progress, d.digest, done, total));
        });
      };
      auto dir = store.ensure_layer(d.digest, d.media_type, download, &cached);
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
  return pulled;
}

}  // namespace boxcar::images
