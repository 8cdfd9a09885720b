// WarmPool: sandboxes with the default spec set up ahead of time (--sandbox-warm N,
// shared/SANDBOXES.md §1.2 item 5), so a create that asks for nothing else answers without
// preparing a Job, starting init or making a network. SandboxHost::create takes one and gives it
// the sandbox's id (its directory is renamed, its hostname set by
// SandboxHostOptions::rename_sandbox); the pool then refills in the background, one sandbox per
// io_context handler, off the create's path.
#pragma once

#include <cstddef>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "base/result.h"
#include "executors/executor.h"
#include "protocol/sandbox_api.h"

namespace boxcar::sandboxes {

// One sandbox nobody has used: nothing ran in it, its /workspace is empty.
struct WarmSandbox {
  std::filesystem::path dir;  // <data>/sandboxes/.warm-<n>/: workspace/, logs/
  std::unique_ptr<executors::Job> job;
  std::unique_ptr<executors::Sandbox> sandbox;
  int netns = -1;             // SandboxHostOptions::make_netns's, or -1 (loopback only)
  std::string netns_key;      // what make_netns was called with (release_netns takes it back)
};

// Whether a create can take a warm sandbox: the defaults in everything the executor or the
// network was set up with (image, resources, network, egress). Everything else (id, owner, env,
// labels, cwd, timers) is the create's own and applied when taken.
bool warm_fits(const protocol::SandboxCreate& spec, const std::string& pool_network);

class WarmPool {
 public:
  using Make = std::function<Result<WarmSandbox>()>;
  using Discard = std::function<void(WarmSandbox&)>;
  // `target` sandboxes kept ready; `room` says whether another may be made now (free slots).
  WarmPool(boost::asio::io_context& io, size_t target, Make make, Discard discard, std::function<bool()> room);
  ~WarmPool();  // discards what it holds
  WarmPool(const WarmPool&) = delete;
  WarmPool& operator=(const WarmPool&) = delete;

  // A ready sandbox, oldest first, or nullopt when none is ready (the create goes cold).
  std::optional<WarmSandbox> take();
  // Posts the making of what is missing, one sandbox per handler. A failed make stops the refill
  // until the next take (no retry loop on a broken host).
  void refill();
  // Gives up one ready sandbox (a cold create needs its slot): whether there was one.
  bool discard_one();
  void clear();
  size_t size() const { return ready_.size(); }
  size_t target() const { return target_; }

 private:
  void make_one();
  boost::asio::io_context& io_;
  size_t target_;
  Make make_;
  Discard discard_;
  std::function<bool()> room_;
  std::deque<WarmSandbox> ready_;
  bool posted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace boxcar::sandboxes
