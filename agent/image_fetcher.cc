#include "agent/image_fetcher.h"

#include <algorithm>
#include <atomic>
#include <list>
#include <mutex>
#include <thread>

#include <boost/asio/post.hpp>

#include "images/image_puller.h"
#include "images/reference.h"

namespace boxcar::agent {

namespace {

constexpr size_t kPullsAtOnce = 4;

// One fetch() call: cancelled when its handle is dropped or the fetcher goes. `cancelled` is the
// pulls' stop token: they check it as data arrives, between tries and between a layer's entries.
struct Request {
  std::atomic<bool> wanted{true};
  std::atomic<bool> cancelled{false};
};

}  // namespace

// What the pulling threads share with the fetcher. The io_context may be gone before a pull
// ends (a CLI returning from its command): `io` is cleared under the lock when the fetcher goes,
// and a thread posts its answer only while it is set.
struct ImageFetcher::Shared {
  std::mutex mu;
  boost::asio::io_context* io = nullptr;
  std::unique_ptr<images::LayerStore> store;
  std::unique_ptr<images::RegistryClient> registry;
  images::PullProgress progress;
  Millis pull_timeout{0};
  std::list<std::weak_ptr<Request>> requests;  // to cancel when the fetcher goes
};

namespace {

Result<RunImage> pull_one(images::LayerStore& store, images::RegistryClient& registry,
                          const images::PullProgress& progress, const images::PullOptions& options,
                          const std::string& text) {
  auto ref = images::parse_reference(text);
  if (!ref.ok()) return ref.error();
  // Leased by the puller itself, so no collector runs between the pull and the step.
  auto lease = std::make_shared<images::ImageLease>();
  auto pulled = images::pull_image(store, registry, *ref, options, progress, lease.get());
  if (!pulled.ok()) return pulled.error();
  return RunImage{std::move(pulled.value()), std::move(lease)};
}

}  // namespace

Result<std::unique_ptr<ImageFetcher>> ImageFetcher::make(boost::asio::io_context& io, ImageFetcherOptions options) {
  auto shared = std::make_shared<Shared>();
  auto store = images::LayerStore::open(options.store);
  if (!store.ok()) return store.error();
  auto registry = images::RegistryClient::make(std::move(options.registry));
  if (!registry.ok()) return registry.error();
  shared->io = &io;
  shared->store = std::move(store.value());
  shared->registry = std::move(registry.value());
  shared->progress = std::move(options.progress);
  shared->pull_timeout = options.pull_timeout;
  return std::unique_ptr<ImageFetcher>(new ImageFetcher(std::move(shared)));
}

ImageFetcher::ImageFetcher(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

ImageFetcher::~ImageFetcher() {
  std::lock_guard lock(shared_->mu);
  shared_->io = nullptr;
  for (auto& weak : shared_->requests) {
    if (auto r = weak.lock()) r->cancelled = true;
  }
  shared_->requests.clear();
}

std::shared_ptr<void> ImageFetcher::fetch(std::vector<std::string> refs, std::function<void(RunImages)> done) {
  auto request = std::make_shared<Request>();
  {
    std::lock_guard lock(shared_->mu);
    shared_->requests.remove_if([](const std::weak_ptr<Request>& w) { return w.expired(); });
    shared_->requests.push_back(request);
  }
  // The handle: dropping it tells the thread nobody waits for the answer any more, and stops
  // its pulls (a cancelled run must not keep downloading).
  std::shared_ptr<void> handle(nullptr, [request](void*) {
    request->wanted = false;
    request->cancelled = true;
  });
  std::thread([shared = shared_, request, refs = std::move(refs), done = std::move(done)]() mutable {
    images::PullOptions options;
    options.timeout = shared->pull_timeout;
    options.cancel = &request->cancelled;
    // Several images at once, so one slow registry does not hold the others up; at most
    // kPullsAtOnce, since a pipeline may name hundreds (each pull has layer threads of its own).
    std::vector<Result<RunImage>> results(refs.size(), Error{"not pulled"});
    std::atomic<size_t> next{0};
    auto puller = [&] {
      for (size_t i; (i = next++) < refs.size();) {
        results[i] = pull_one(*shared->store, *shared->registry, shared->progress, options, refs[i]);
      }
    };
    std::vector<std::thread> pulls;
    for (size_t n = 0; n < std::min(refs.size(), kPullsAtOnce); ++n) pulls.emplace_back(puller);
    for (auto& t : pulls) t.join();
    RunImages images;
    for (size_t i = 0; i < refs.size(); ++i) images.emplace(refs[i], std::move(results[i]));
    std::lock_guard lock(shared->mu);
    if (!shared->io || !request->wanted) return;
    boost::asio::post(*shared->io, [request, images = std::move(images), done = std::move(done)]() mutable {
      if (request->wanted) done(std::move(images));
    });
  }).detach();
  return handle;
}

}  // namespace boxcar::agent
