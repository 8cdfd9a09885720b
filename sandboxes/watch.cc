#include "sandboxes/watch.h"

#include <fnmatch.h>

#include <algorithm>

namespace boxcar::sandboxes {

namespace json = boost::json;

bool watch_selects(const WatchSpec& spec, const std::string& path) {
  std::string rel = path;
  if (path.size() > spec.path.size() && path.compare(0, spec.path.size(), spec.path) == 0) {
    rel = path.substr(spec.path == "/" ? 1 : spec.path.size() + 1);
  }
  if (!spec.include.empty() && ::fnmatch(spec.include.c_str(), rel.c_str(), 0) != 0) return false;
  if (!spec.exclude.empty() && ::fnmatch(spec.exclude.c_str(), rel.c_str(), 0) == 0) return false;
  return true;
}

executors::WatchHandlers WatchFeed::handlers(std::function<void(Status)> started) {
  auto weak = weak_from_this();
  auto first = std::make_shared<std::function<void(Status)>>(std::move(started));
  executors::WatchHandlers h;
  h.on_watching = [first, weak] {
    if (auto self = weak.lock()) self->watching_ = true;
    if (*first) std::exchange(*first, {})(Status{});
  };
  h.on_event = [weak](executors::WatchEvent ev) {
    auto self = weak.lock();
    if (!self || !watch_selects(self->spec_, ev.path)) return;
    self->push({"change", json::object{{"kind", executors::to_string(ev.kind)}, {"path", ev.path}, {"is_dir", ev.is_dir}}});
  };
  h.on_overflow = [weak] {
    // The kernel lost events inside the sandbox: how many it does not say.
    if (auto self = weak.lock()) self->push({"overflow", json::object{{"dropped", nullptr}}});
  };
  h.on_end = [weak, first](Status why) {
    if (*first) return std::exchange(*first, {})(why);  // never started: the route answers the error
    if (auto self = weak.lock()) self->finish(why);
  };
  return h;
}

void WatchFeed::push(WatchItem item) {
  if (ended_) return;
  if (queue_.size() >= capacity_) {
    ++dropped_;
    ++dropped_total_;
    return;
  }
  if (dropped_ > 0) {
    // Allowed past the capacity by one: the drop is announced where it happened.
    queue_.push_back({"overflow", json::object{{"dropped", dropped_}}});
    dropped_ = 0;
  }
  queue_.push_back(std::move(item));
  pump();
}

void WatchFeed::finish(Status why) {
  if (ended_) return;
  if (dropped_ > 0) queue_.push_back({"overflow", json::object{{"dropped", std::exchange(dropped_, 0)}}});
  json::object end{{"reason", why ? "the watched path was deleted or moved away" : why.error().message}};
  queue_.push_back({"end", std::move(end)});
  ended_ = true;
  handle_.reset();
  pump();
}

void WatchFeed::attach(std::function<bool()> ready, std::function<void(WatchItem)> take) {
  ready_ = std::move(ready);
  take_ = std::move(take);
  pump();
}

void WatchFeed::pump() {
  if (!take_ || stopped_) return;
  auto self = shared_from_this();  // take_ may drop the last other reference
  while (!queue_.empty() && (!ready_ || ready_() || queue_.front().name == "end")) {
    WatchItem item = std::move(queue_.front());
    queue_.pop_front();
    const bool last = item.name == "end";
    take_(std::move(item));
    if (last) {
      // The consumer holds the feed and the feed its consumer: end the cycle with the stream.
      take_ = {};
      ready_ = {};
      return;
    }
    if (stopped_) return;
  }
}

void WatchFeed::stop() {
  stopped_ = true;
  ended_ = true;
  handle_.reset();
  queue_.clear();
  take_ = {};
  ready_ = {};
}

void SandboxWatches::prune() {
  std::erase_if(feeds_, [](const std::weak_ptr<WatchFeed>& w) {
    auto f = w.lock();
    return !f || f->ended();
  });
}

size_t SandboxWatches::count() {
  prune();
  return feeds_.size();
}

bool SandboxWatches::add(const std::shared_ptr<WatchFeed>& feed) {
  prune();
  if (feeds_.size() >= kMaxWatches && !trackers_.empty()) {
    auto oldest = std::min_element(trackers_.begin(), trackers_.end(),
                                   [](const auto& a, const auto& b) { return a.second.asked < b.second.asked; });
    oldest->second.feed->stop();
    trackers_.erase(oldest);
    prune();
  }
  if (feeds_.size() >= kMaxWatches) return false;
  feeds_.push_back(feed);
  return true;
}

void SandboxWatches::changed(const std::string& path) {
  auto it = trackers_.find(path);
  if (it != trackers_.end()) it->second.version = ++next_version_;
}

void SandboxWatches::lost(const std::string& path) {
  auto it = trackers_.find(path);
  if (it == trackers_.end()) return;
  auto feed = std::move(it->second.feed);
  trackers_.erase(it);
  if (feed) feed->stop();
}

Result<SandboxWatches::Changes> SandboxWatches::changes(executors::Sandbox& sandbox, const std::string& path,
                                                        uint64_t since) {
  auto it = trackers_.find(path);
  if (it != trackers_.end() && !it->second.feed->ended()) {
    Tracker& t = it->second;
    t.asked = ++asks_;
    // A version from before this tracker began (or one never given) cannot be compared.
    if (since < t.from || since > t.version) return Changes{"resync", t.version};
    return Changes{since == t.version ? "unchanged" : "changed", t.version};
  }
  if (it != trackers_.end()) trackers_.erase(it);
  if (trackers_.size() >= kMaxChangeTrackers) {
    auto oldest = std::min_element(trackers_.begin(), trackers_.end(),
                                   [](const auto& a, const auto& b) { return a.second.asked < b.second.asked; });
    oldest->second.feed->stop();
    trackers_.erase(oldest);
  }
  auto feed = std::make_shared<WatchFeed>(WatchSpec{path, true, "", ""});
  if (!add(feed)) return Error{"this sandbox has " + std::to_string(kMaxWatches) + " watches already", EAGAIN};
  std::weak_ptr<bool> alive = alive_;
  auto handle = sandbox.watch({path, true}, feed->handlers([this, alive, path](Status started) {
    if (!started && !alive.expired()) lost(path);  // not there (yet): the next ask starts again
  }));
  if (!handle) return handle.error();
  feed->hold(std::move(*handle));
  feed->attach(nullptr, [this, alive, path](WatchItem item) {
    if (alive.expired()) return;
    if (item.name == "end") return lost(path);
    changed(path);  // an overflow counts as a change too: something did change
  });
  Tracker t;
  t.from = t.version = ++next_version_;
  t.asked = ++asks_;
  t.feed = std::move(feed);
  trackers_[path] = std::move(t);
  return Changes{"resync", next_version_};
}

}  // namespace boxcar::sandboxes
