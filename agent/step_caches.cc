#include "agent/step_caches.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include <boost/asio/post.hpp>

#include "agent/cache_archive.h"
#include "agent/cache_key_hash.h"
#include "base/safe_relative_path.h"
#include "base/sha256.h"
#include "base/size.h"
#include "pipeline/cache_key.h"

namespace boxcar::agent {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

Result<std::string> render(const std::string& text, const std::string& branch, int workspace) {
  auto parts = pipeline::parse_cache_key(text);
  if (!parts) return parts.error();
  return pipeline::render_cache_key(*parts, branch, [workspace](const std::vector<std::string>& globs) {
    if (workspace < 0) return Result<std::string>(Error{"the step's workspace cannot be read for ${hash:...}"});
    return hash_cache_globs(workspace, globs);
  });
}

// The layer of a step's k-th "~/..." path: [a-z]+ as WorkspaceLayers wants.
std::string home_layer_name(size_t k) {
  return std::string("home") + static_cast<char>('a' + k / 26 % 26) + static_cast<char>('a' + k % 26);
}

}  // namespace

StepCaches::StepCaches(asio::io_context& io, WorkspaceLayers& layers, const pipeline::ExpandedPipeline& pipeline,
                       CacheRunOptions options, RunObserver& observer)
    : io_(io), layers_(layers), pipeline_(pipeline), options_(std::move(options)), observer_(observer) {
  steps_.resize(pipeline.steps.size());
  from_remote_.resize(pipeline.steps.size());
}

StepCaches::~StepCaches() {
  *alive_ = false;
  worker_.join();
}

bool StepCaches::wanted(size_t step) const {
  return options_.store && step < steps_.size() && !pipeline_.steps[step].step.caches.empty();
}

std::string StepCaches::label(size_t step, size_t cache) const {
  const auto& work = steps_[step];
  std::string key = work && cache < work->keys.size() && !work->keys[cache].empty()
                        ? work->keys[cache]
                        : pipeline_.steps[step].step.caches[cache].key;
  return pipeline_.steps[step].name + ": cache " + key + ": ";
}

void StepCaches::restore(size_t step, std::function<void()> ready) {
  const auto& caches = pipeline_.steps[step].step.caches;
  auto work = std::make_shared<PerStep>();
  for (const auto& c : caches) {
    for (const auto& p : c.paths) {
      if (p.starts_with("~/") && std::find(work->home_paths.begin(), work->home_paths.end(), p) == work->home_paths.end()) {
        work->home_paths.push_back(p);
      }
    }
  }
  steps_[step] = work;
  from_remote_[step].assign(caches.size(), false);
  // The workspace as the step will find it (its needs' outputs over the checkout): a layer made
  // now only to record that stack; the attempt makes its own fresh one.
  std::shared_ptr<unique_fd> view;
  if (auto made = layers_.workspace(step, {}); made.ok()) {
    if (auto v = layers_.view(step, "workspace", false); v.ok()) view = std::make_shared<unique_fd>(std::move(*v));
  }
  std::weak_ptr<bool> weak = alive_;
  asio::post(worker_, [this, weak, step, work, view, ready = std::move(ready)]() mutable {
    const auto& wanted = pipeline_.steps[step].step.caches;
    int fd = view ? view->get() : -1;
    std::vector<std::string> errors(wanted.size());
    for (const auto& c : wanted) {
      auto key = render(c.key, options_.branch, fd);
      std::vector<std::string> prefixes;
      for (const auto& r : c.restore_keys) {
        if (auto p = render(r, options_.branch, fd); p.ok()) prefixes.push_back(std::move(*p));
      }
      work->keys.push_back(key.ok() ? *key : "");
      if (!key.ok()) errors[work->hits.size()] = key.error().message;
      work->restore_keys.push_back(prefixes);
      std::shared_ptr<CacheHit> hit;
      if (key.ok()) {
        if (auto h = options_.store->lookup(options_.repository, *key, prefixes)) {
          hit = std::make_shared<CacheHit>(std::move(*h));
        }
      }
      work->hits.push_back(std::move(hit));
    }
    asio::post(io_, [this, weak, step, work, errors, ready = std::move(ready)]() mutable {
      if (weak.expired()) return;
      for (size_t c = 0; c < errors.size(); ++c) {
        if (!errors[c].empty()) observer_.notice(label(step, c) + "not restored: " + errors[c]);
      }
      fetch_misses(step, 0, work, std::move(ready));
    });
  });
}

// One miss after another: the server is asked, and what it has unpacked into the store.
void StepCaches::fetch_misses(size_t step, size_t from, std::shared_ptr<PerStep> work, std::function<void()> ready) {
  size_t c = from;
  while (c < work->hits.size() && ((work->hits[c] && work->hits[c]->exact) || work->keys[c].empty() || !options_.remote)) ++c;
  if (c >= work->hits.size()) return restored(step, work, std::move(ready));
  std::weak_ptr<bool> weak = alive_;
  // A prefix hit here still asks the server for the key itself (only), which beats it.
  std::vector<std::string> prefixes = work->hits[c] ? std::vector<std::string>{} : work->restore_keys[c];
  options_.remote->fetch(work->keys[c], prefixes,
                         [this, weak, step, c, work, ready = std::move(ready)](std::optional<RemoteCacheEntry> entry,
                                                                              std::string why) mutable {
    if (weak.expired()) return;
    if (!why.empty()) observer_.notice(label(step, c) + "the server's copy was not asked: " + why);
    if (!entry) return fetch_misses(step, c + 1, work, std::move(ready));
    auto tar = std::make_shared<RemoteCacheEntry>(std::move(*entry));
    asio::post(worker_, [this, weak, step, c, work, tar, ready = std::move(ready)]() mutable {
      auto unpacked = options_.store->unpack(options_.repository, tar->key, tar->tar.get());
      std::string error = unpacked.ok() ? "" : unpacked.error().message;
      bool got = false;
      if (unpacked.ok()) {
        if (auto h = options_.store->lookup(options_.repository, tar->key, {})) {
          h->exact = tar->key == work->keys[c];
          if (!h->exact) {
            for (const auto& p : work->restore_keys[c]) {
              if (tar->key.starts_with(p)) {
                h->prefix = p;
                break;
              }
            }
          }
          work->hits[c] = std::make_shared<CacheHit>(std::move(*h));
          got = true;
        }
      }
      asio::post(io_, [this, weak, step, c, work, error, got, ready = std::move(ready)]() mutable {
        if (weak.expired()) return;
        if (!error.empty()) observer_.notice(label(step, c) + "the server's copy was refused: " + error);
        from_remote_[step][c] = got;
        fetch_misses(step, c + 1, work, std::move(ready));
      });
    });
  });
}

void StepCaches::restored(size_t step, std::shared_ptr<PerStep> work, std::function<void()> ready) {
  for (size_t c = 0; c < work->hits.size(); ++c) {
    if (work->keys[c].empty()) continue;
    const auto& hit = work->hits[c];
    std::string where = from_remote_[step][c] ? ", from the server" : "";
    if (!hit) {
      observer_.notice(label(step, c) + "miss");
    } else if (hit->exact) {
      observer_.notice(label(step, c) + "restored (exact" + where + ")");
    } else {
      observer_.notice(label(step, c) + "restored from " + hit->key + " (prefix " + hit->prefix + where + ")");
    }
  }
  ready();
}

std::vector<fs::path> StepCaches::workspace_lowers(size_t step) const {
  std::vector<fs::path> dirs;
  if (step >= steps_.size() || !steps_[step]) return dirs;
  for (const auto& hit : steps_[step]->hits) {
    if (hit) dirs.push_back(hit->workspace);
  }
  return dirs;
}

std::vector<executors::LayeredDir> StepCaches::home_layers(size_t step, const std::string& home) {
  std::vector<executors::LayeredDir> out;
  if (step >= steps_.size() || !steps_[step] || steps_[step]->home_paths.empty()) return out;
  PerStep& work = *steps_[step];
  if (home.empty() || home[0] != '/') {
    observer_.notice(pipeline_.steps[step].name + ": caches under ~/ are off: the step has no HOME");
    return out;
  }
  // HOME comes from the pipeline or the image: it becomes a mount target inside the sandbox's
  // root, so it must name a place in it (no "..": the target is made before pivot_root).
  if (std::string rel = home.substr(1); !rel.empty() && !safe_relative_path(rel)) {
    observer_.notice(pipeline_.steps[step].name + ": caches under ~/ are off: HOME \"" + home +
                     "\" is not a plain absolute path");
    return out;
  }
  for (size_t k = 0; k < work.home_paths.size(); ++k) {
    std::string rel = work.home_paths[k].substr(2);
    std::vector<fs::path> lowers;  // none found: the executor gives it an empty one
    for (const auto& hit : work.hits) {
      std::error_code ec;
      if (hit && fs::is_directory(fs::symlink_status(hit->home / rel, ec))) lowers.push_back(hit->home / rel);
    }
    auto layer = layers_.extra(step, home_layer_name(k), (home == "/" ? "" : home) + "/" + rel, lowers);
    if (!layer.ok()) {
      observer_.notice(pipeline_.steps[step].name + ": caches under ~/ are off: " + layer.error().message);
      return {};
    }
    out.push_back(std::move(*layer));
  }
  work.home_given = true;
  return out;
}

void StepCaches::save(size_t step, std::function<void()> done) {
  auto work = step < steps_.size() ? steps_[step] : nullptr;
  std::vector<size_t> todo;
  for (size_t c = 0; work && c < work->hits.size(); ++c) {
    if (work->keys[c].empty() || (work->hits[c] && work->hits[c]->exact)) continue;
    if (!options_.save) {
      observer_.notice(label(step, c) + "not saved: a job from a fork's pull request restores caches but never saves them");
      continue;
    }
    todo.push_back(c);
  }
  if (todo.empty()) return done();
  auto ws = layers_.view(step);
  std::shared_ptr<unique_fd> workspace = ws.ok() ? std::make_shared<unique_fd>(std::move(*ws)) : nullptr;
  auto homes = std::make_shared<std::vector<std::pair<std::string, unique_fd>>>();
  for (size_t k = 0; work->home_given && k < work->home_paths.size(); ++k) {
    if (auto h = layers_.view(step, home_layer_name(k)); h.ok()) homes->emplace_back(work->home_paths[k], std::move(*h));
  }
  if (!workspace) {
    for (size_t c : todo) observer_.notice(label(step, c) + "not saved: " + ws.error().message);
    return done();
  }
  struct Upload {
    size_t cache;
    std::shared_ptr<const unique_fd> tar;
    uint64_t bytes;
    std::string sha256;
  };
  auto lines = std::make_shared<std::vector<std::string>>();
  auto uploads = std::make_shared<std::vector<Upload>>();
  std::weak_ptr<bool> weak = alive_;
  asio::post(worker_, [this, weak, step, work, todo, workspace, homes, lines, uploads, done = std::move(done)]() mutable {
    std::map<std::string, int> home_fds;
    for (const auto& [path, fd] : *homes) home_fds[path] = fd.get();
    for (size_t c : todo) {
      const auto& cache = pipeline_.steps[step].step.caches[c];
      auto saved = options_.store->save(options_.repository, work->keys[c], workspace->get(), home_fds, cache.paths);
      if (!saved.ok()) {
        lines->push_back(label(step, c) + "not saved: " + saved.error().message);
        continue;
      }
      for (const auto& w : saved->warnings) lines->push_back(label(step, c) + w);
      lines->push_back(label(step, c) + "saved (" + format_size(saved->bytes) + ")");
      if (!options_.remote || saved->bytes == 0) continue;
      auto hit = options_.store->lookup(options_.repository, work->keys[c], {});
      if (!hit) continue;
      unique_fd tar(::open(options_.store->options().dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
      if (!tar) {
        lines->push_back(label(step, c) + "not sent to the server: cannot make a temporary file");
        continue;
      }
      uint64_t size = 0;
      Status packed = pack_cache_entry(hit->workspace.parent_path(), tar.get());
      auto sha = packed.ok() ? sha256_fd(tar.get(), &size) : Result<std::string>(packed.error());
      if (!sha.ok()) {
        lines->push_back(label(step, c) + "not sent to the server: " + sha.error().message);
        continue;
      }
      uploads->push_back({c, std::make_shared<const unique_fd>(std::move(tar)), size, *sha});
    }
    asio::post(io_, [this, weak, step, work, lines, uploads, done = std::move(done)]() {
      if (weak.expired()) return;
      for (const auto& l : *lines) observer_.notice(l);
      for (const auto& u : *uploads) options_.remote->upload(work->keys[u.cache], u.tar, u.bytes, u.sha256);
      done();
    });
  });
}

}  // namespace boxcar::agent
