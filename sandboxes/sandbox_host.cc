#include "sandboxes/sandbox_host.h"

#include "sandboxes/command_run.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "base/private_dir.h"
#include "base/random_token.h"
#include "protocol/json_reader.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/disk_quota.h"
#include "sandboxes/json_file.h"
#include "sandboxes/lifecycle_timers.h"
#include "sandboxes/warm_pool.h"

namespace boxcar::sandboxes {

namespace fs = std::filesystem;
namespace json = boost::json;
using server::HttpRequest;
using server::HttpResponse;

namespace {

int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

int64_t mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

Status write_meta(const fs::path& dir, const protocol::SandboxCreate& spec) {
  return write_json_file(dir / "meta.json", protocol::to_json(spec));
}

executors::SandboxSpec sandbox_spec(const protocol::SandboxCreate& c) {
  executors::SandboxSpec s;
  s.name = c.id;  // the hostname
  s.image = c.image;
  s.network = c.network == "none" ? executors::NetworkMode::none : executors::NetworkMode::job;
  if (c.resources.memory_bytes > 0) s.memory_bytes = static_cast<uint64_t>(c.resources.memory_bytes);
  if (c.resources.cpu_millis > 0) s.cpus = static_cast<double>(c.resources.cpu_millis) / 1000.0;
  if (c.resources.pids > 0) s.pids = static_cast<uint64_t>(c.resources.pids);
  if (c.resources.tmp_bytes > 0) s.tmp_bytes = static_cast<uint64_t>(c.resources.tmp_bytes);
  return s;
}

}  // namespace

struct SandboxHost::Impl {
  boost::asio::io_context& io;
  executors::Executor& executor;
  SandboxHostOptions options;
  std::shared_ptr<std::atomic<size_t>> git_threads = std::make_shared<std::atomic<size_t>>(0);
  fs::path root;  // <data>/sandboxes
  std::string key;
  std::map<std::string, std::unique_ptr<ApiSandbox>> sandboxes;
  std::unique_ptr<DiskMeter> disk_meter = nullptr;                   // made by the constructor
  std::unique_ptr<boost::asio::steady_timer> disk_timer = nullptr;  // every disk_check_every
  // The measures of a sandbox's workspace, coalesced: one walk at a time per sandbox, and callers
  // that come during it share the one next walk (which starts after they asked, so it sees what
  // they changed). However often /metrics or the file routes ask, a sandbox queues at most two
  // walks, and the meter's one thread stays free for every other sandbox's periodic check.
  struct Measuring {
    std::vector<std::function<void()>> now, next;  // waiting on the walk running, on the next one
  };
  std::map<std::string, Measuring> measuring;
  uint64_t disk_walks = 0;

  // A measure of `id`'s workspace came back: past its quota, its commands stop.
  void disk_measured(const std::string& id, const Result<DiskMeter::Usage>& usage) {
    auto it = sandboxes.find(id);
    if (it == sandboxes.end()) return;
    ApiSandbox& sb = *it->second;
    bool was_over = sb.disk().over();
    if (!usage) {
      // Not a pass: the sandbox may be making the walk fail on purpose (DiskQuota::unmeasured).
      log(id + ": cannot measure /workspace: " + usage.error().message);
      sb.disk().unmeasured(usage.error().message);
    } else {
      sb.disk().measured(usage->bytes, usage->too_many_entries);
    }
    if (!sb.disk().over()) {
      if (was_over) log(id + ": /workspace is back under its disk quota");
      return;
    }
    size_t stopped = sb.running() ? CommandRun::stop_all(sb.sandbox(), executors::Outcome::Kind::quota_exceeded) : 0;
    if (!was_over || stopped > 0) {
      log(id + ": /workspace past its disk quota (" + (usage ? std::to_string(usage->bytes) + " bytes" : "not measured") + "), " +
          std::to_string(stopped) + " commands stopped");
    }
  }

  void arm_disk_timer(SandboxHost& host) {
    if (options.disk_check_every.count() <= 0) return;
    disk_timer->expires_after(options.disk_check_every);
    disk_timer->async_wait([this, &host](const boost::system::error_code& ec) {
      if (ec) return;
      host.check_disks([this, &host] { arm_disk_timer(host); });
    });
  }
  std::unique_ptr<WarmPool> pool;  // null without --sandbox-warm
  uint64_t warm_made = 0;          // names .warm-<n>

  void log(const std::string& line) const {
    if (options.log) options.log("sandbox " + line);
  }
  void changed() const {
    if (options.on_change) options.on_change();
  }
  // Every state change goes through here: the events stream and the sync hear of it.
  void set_state(ApiSandbox& sb, const std::string& state) {
    sb.state_ = state;
    json::object data{{"state", state}};
    if (state == "error") data["error"] = sb.error_;
    sb.events().publish("state", std::move(data));
    arm(sb);
    changed();
  }

  // The sandbox's idle timer (lifecycle_timers.h), armed for its next step or cancelled.
  void arm(ApiSandbox& sb) {
    IdleInputs in{sb.state_, sb.timers(), sb.leases(), sb.idle_since(), sb.paused_at_,
                  std::chrono::steady_clock::now()};
    IdleStep step = next_idle_step(in);
    if (step.action == IdleStep::Action::none) {
      if (sb.idle_timer_) sb.idle_timer_->cancel();
      return;
    }
    if (!sb.idle_timer_) sb.idle_timer_ = std::make_unique<boost::asio::steady_timer>(io);
    sb.idle_timer_->expires_at(step.at);
    // By id, not by pointer: the sandbox may be deleted before the timer fires (its timer is
    // cancelled then, and the handler returns on the error before touching anything).
    sb.idle_timer_->async_wait([this, id = sb.id()](boost::system::error_code ec) {
      if (ec) return;
      auto it = sandboxes.find(id);
      if (it != sandboxes.end()) on_idle_timer(*it->second);
    });
  }

  void on_idle_timer(ApiSandbox& sb) {
    IdleInputs in{sb.state_, sb.timers(), sb.leases(), sb.idle_since(), sb.paused_at_,
                  std::chrono::steady_clock::now()};
    IdleStep step = next_idle_step(in);
    if (step.action == IdleStep::Action::pause) {
      if (Status s = pause(sb, "idle for " + std::to_string(sb.timers().sleep_after_ms) + " ms"); !s) {
        // Cannot freeze here: it stays running, and the timer is not armed again for nothing.
        log(sb.id() + ": cannot pause: " + s.error().message);
      }
      return;
    }
    if (step.action == IdleStep::Action::stop) {
      stop(sb);
      log(sb.id() + ": stopped: paused for " + std::to_string(sb.timers().stop_after_ms) + " ms");
      set_state(sb, "stopped");
      return;
    }
    arm(sb);
  }

  Status pause(ApiSandbox& sb, const std::string& why) {
    if (sb.state_ == "paused") return {};
    if (sb.state_ != "running" || !sb.sandbox_) {
      return Error{"sandbox " + sb.id() + " is " + sb.state_ + ", not running", 0, ErrorCode::conflict};
    }
    if (Status s = sb.sandbox_->freeze(true); !s) return s;
    sb.paused_at_ = std::chrono::steady_clock::now();
    log(sb.id() + ": paused: " + why);
    set_state(sb, "paused");
    return {};
  }

  Status thaw(ApiSandbox& sb) {
    if (sb.state_ != "paused") return {};
    if (Status s = sb.sandbox_->freeze(false); !s) return s;
    log(sb.id() + ": resumed");
    sb.touch();
    set_state(sb, "running");
    return {};
  }

  // The exposed ports' preview URLs point at the executor's Sandbox: withdrawn when it goes,
  // published again under the same tokens (the same URLs) when the sandbox starts again.
  void republish_ports(ApiSandbox& sb) {
    if (!options.publish_port || sb.ports().size() == 0) return;
    for (const auto& old : sb.ports().list()) {
      protocol::SandboxPort again = options.publish_port(*sb.sandbox_, sb.id(), static_cast<uint16_t>(old.port), old.token);
      again.port = old.port;
      again.name = old.name;
      sb.ports().add(again);
    }
    if (Status s = sb.ports().save(sb.dir() / "ports.json"); !s) log(sb.id() + ": cannot keep its ports: " + s.error().message);
  }

  // Job and Sandbox for `sb` (created, or stopped and started again): state running, or an Error.
  Status start(ApiSandbox& sb) {
    const auto& spec = sb.spec();
    if (spec.image != "host") {
      return Error{"image \"" + spec.image + "\": only \"host\" is supported by this agent yet",
                   0, ErrorCode::invalid_input, "image"};
    }
    if (spec.network == "job" && options.make_netns) {
      auto ns = options.make_netns(spec.id);
      if (!ns) return ns.error();
      sb.netns_ = *ns;
      sb.netns_key_ = spec.id;
    }
    executors::JobSpec job_spec{"sandbox-" + spec.id, sb.workspace_dir(), sb.netns_};
    auto job = executor.prepare(job_spec);
    if (!job) {
      release_netns(sb);
      return job.error();
    }
    // The job holds this one sandbox: without the hint the executor would set up a second one
    // behind it (its per-job prewarm for a next step), on the io thread right after the create,
    // and keep it for the sandbox's whole life.
    (*job)->expect(0);
    auto sandbox = (*job)->start(sandbox_spec(spec));
    if (!sandbox) {
      (*job)->destroy();
      release_netns(sb);
      return sandbox.error();
    }
    sb.job_ = std::move(*job);
    sb.sandbox_ = std::move(*sandbox);
    sb.state_ = "running";
    sb.error_.clear();
    republish_ports(sb);
    return {};
  }

  void release_netns(ApiSandbox& sb) {
    if (sb.netns_ >= 0 && options.release_netns) options.release_netns(sb.netns_key_);
    sb.netns_ = -1;
  }

  // A sandbox of the default spec under <root>/.warm-<n>/ (adopt() skips and removes those).
  Result<WarmSandbox> make_warm() {
    WarmSandbox w;
    std::string name = ".warm-" + std::to_string(++warm_made);
    w.dir = root / name;
    std::error_code ec;
    fs::remove_all(w.dir, ec);
    if (Status s = make_private_dir(w.dir); !s) return s.error();
    if (Status s = make_private_dir(w.dir / "logs"); !s) return s.error();
    fs::create_directories(w.dir / "workspace", ec);
    fs::permissions(w.dir / "workspace", fs::perms(0755), ec);
    if (ec) return Error{"cannot create " + (w.dir / "workspace").string() + ": " + ec.message()};
    auto fail = [&](const Error& e) -> Result<WarmSandbox> {
      discard_warm(w);
      log("warm pool: cannot set up a sandbox: " + e.message);
      return e;
    };
    if (options.make_netns) {
      auto ns = options.make_netns(name);
      if (!ns) return fail(ns.error());
      w.netns = *ns;
      w.netns_key = name;
    }
    auto job = executor.prepare(executors::JobSpec{"sandbox-warm-" + std::to_string(warm_made), w.dir / "workspace", w.netns});
    if (!job) return fail(job.error());
    (*job)->expect(0);
    w.job = std::move(*job);
    protocol::SandboxCreate defaults;
    defaults.id = "sandbox";  // its hostname until taken (options.rename_sandbox)
    auto sandbox = w.job->start(sandbox_spec(defaults));
    if (!sandbox) return fail(sandbox.error());
    w.sandbox = std::move(*sandbox);
    return w;
  }

  void discard_warm(WarmSandbox& w) {
    if (w.sandbox) w.sandbox->destroy();
    w.sandbox.reset();
    if (w.job) w.job->destroy();
    w.job.reset();
    if (w.netns >= 0 && options.release_netns) options.release_netns(w.netns_key);
    w.netns = -1;
    std::error_code ec;
    if (!w.dir.empty()) fs::remove_all(w.dir, ec);
  }

  // A sandbox set up for `spec` now: its directory, Job, network and Sandbox.
  Result<std::unique_ptr<ApiSandbox>> create_cold(const protocol::SandboxCreate& spec) {
    fs::path dir = root / spec.id;
    std::error_code ec;
    fs::remove_all(dir, ec);  // a leftover of a removal cut short
    if (Status s = make_private_dir(dir); !s) return s.error();
    if (Status s = make_private_dir(dir / "logs"); !s) return s.error();
    // The workspace as the executors take a job's checkout: a plain directory the idmapped mount
    // shows as the sandbox root's own.
    fs::create_directories(dir / "workspace", ec);
    if (ec) return Error{"cannot create " + (dir / "workspace").string() + ": " + ec.message()};
    fs::permissions(dir / "workspace", fs::perms(0755), ec);
    if (Status s = write_meta(dir, spec); !s) {
      fs::remove_all(dir, ec);
      return s.error();
    }
    auto sb = std::make_unique<ApiSandbox>(spec, dir);
    if (Status s = start(*sb); !s) {
      fs::remove_all(dir, ec);
      log(spec.id + ": create failed: " + s.error().message);
      return s.error();
    }
    return sb;
  }

  // `spec` in a warm sandbox, when one is ready and fits: its directory becomes <root>/<id>, its
  // hostname the id. nullptr: the create goes cold.
  std::unique_ptr<ApiSandbox> take_warm(const protocol::SandboxCreate& spec) {
    if (!pool || !warm_fits(spec, "job")) return nullptr;
    auto w = pool->take();
    if (!w) return nullptr;
    fs::path dir = root / spec.id;
    std::error_code ec;
    fs::remove_all(dir, ec);  // a leftover of a removal cut short
    fs::rename(w->dir, dir, ec);
    if (ec) {
      log(spec.id + ": cannot take a warm sandbox: rename: " + ec.message());
      discard_warm(*w);
      return nullptr;
    }
    w->dir = dir;
    if (Status s = write_meta(dir, spec); !s) {
      discard_warm(*w);
      return nullptr;
    }
    if (Status s = options.rename_sandbox(*w->sandbox, spec.id); !s) {
      log(spec.id + ": cannot take a warm sandbox: " + s.error().message);
      discard_warm(*w);
      return nullptr;
    }
    auto sb = std::make_unique<ApiSandbox>(spec, dir);
    sb->job_ = std::move(w->job);
    sb->sandbox_ = std::move(w->sandbox);
    sb->netns_ = w->netns;
    sb->netns_key_ = w->netns_key;
    sb->state_ = "running";
    return sb;
  }

  // Everything that runs and is mounted goes; the directory stays.
  void stop(ApiSandbox& sb) {
    // Thawed first: a frozen process cannot act on the SIGTERM the stop begins with.
    if (sb.state_ == "paused" && sb.sandbox_) (void)sb.sandbox_->freeze(false);
    if (options.withdraw_port && sb.sandbox_) {
      for (uint16_t port : sb.ports().ports()) options.withdraw_port(*sb.sandbox_, port);
    }
    sb.processes().kill_all();
    if (sb.sandbox_) {
      CommandRun::sandbox_gone(*sb.sandbox_);
      sb.sandbox_->destroy();
    }
    sb.sandbox_.reset();
    if (sb.job_) sb.job_->destroy();
    sb.job_.reset();
    release_netns(sb);
  }
};

SandboxHost::SandboxHost(boost::asio::io_context& io, executors::Executor& executor,
                         SandboxHostOptions options)
    : impl_(std::make_unique<Impl>(Impl{io, executor, std::move(options), std::make_shared<std::atomic<size_t>>(0),
                                        {}, {}, {}, nullptr, nullptr, {}, 0, {}, 0})) {
  impl_->root = impl_->options.data_dir / "sandboxes";
  impl_->key = impl_->options.key;
  if (impl_->key.empty()) {
    auto token = random_token(32);
    if (!token) abort_without_randomness(token.error());
    impl_->key = *token;
  }
  if (impl_->options.memory_budget_bytes == 0) impl_->options.memory_budget_bytes = mem_available_bytes();
  impl_->disk_meter = std::make_unique<DiskMeter>(io);
  impl_->disk_timer = std::make_unique<boost::asio::steady_timer>(io);
  impl_->arm_disk_timer(*this);
  if (impl_->options.warm > 0 && impl_->options.slots > 0 && impl_->options.rename_sandbox) {
    Impl* impl = impl_.get();
    impl_->pool = std::make_unique<WarmPool>(
        io, impl_->options.warm, [impl] { return impl->make_warm(); },
        [impl](WarmSandbox& w) { impl->discard_warm(w); },
        [impl] { return impl->sandboxes.size() + impl->pool->size() < impl->options.slots; });
  }
}

SandboxHost::~SandboxHost() { shutdown(); }

Status SandboxHost::adopt() {
  if (Status s = make_private_dir(impl_->root); !s) return s;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(impl_->root, ec)) {
    std::string id = entry.path().filename().string();
    if (id.starts_with(".warm-")) {  // a warm sandbox of a dead agent: nobody's
      fs::remove_all(entry.path(), ec);
      ec.clear();
      continue;
    }
    if (!protocol::valid_sandbox_id(id) || impl_->sandboxes.count(id)) continue;
    std::ifstream in(entry.path() / "meta.json");
    std::stringstream text;
    text << in.rdbuf();
    auto v = protocol::parse_json(text.str());
    auto spec = v ? protocol::sandbox_create_from_json(*v) : Result<protocol::SandboxCreate>(v.error());
    if (!spec || spec->id != id) {
      impl_->log(id + ": not adopted, its meta.json is unreadable: " +
                 (spec ? std::string("another id") : spec.error().message));
      continue;
    }
    auto sb = std::make_unique<ApiSandbox>(std::move(*spec), entry.path());
    // Its exposures come back with it, published again when it starts.
    if (Status s = sb->ports().load(entry.path() / "ports.json"); !s) impl_->log(id + ": its ports are lost: " + s.error().message);
    sb->state_ = "stopped";
    impl_->log(id + ": adopted as stopped");
    impl_->sandboxes.emplace(id, std::move(sb));
  }
  if (ec) return Error{"cannot list " + impl_->root.string() + ": " + ec.message()};
  if (impl_->pool) impl_->pool->refill();
  return {};
}

Result<protocol::SandboxReport> SandboxHost::create(const protocol::SandboxCreate& spec) {
  if (impl_->sandboxes.count(spec.id)) {
    return Error{"sandbox " + spec.id + " exists on this agent", 0, ErrorCode::conflict, "id"};
  }
  if (free_slots() == 0) {
    return Error{"this agent holds " + std::to_string(impl_->sandboxes.size()) +
                     " sandboxes, its limit (--sandbox-slots)",
                 0, ErrorCode::limit_exceeded, "sandbox_slots"};
  }
  auto started_at = std::chrono::steady_clock::now();
  if (Status s = make_private_dir(impl_->root); !s) return s.error();
  std::unique_ptr<ApiSandbox> sb = impl_->take_warm(spec);
  bool warm = sb != nullptr;
  if (!warm) {
    // Cold: the slot a warm sandbox holds is given up when this one needs it.
    if (impl_->pool && impl_->sandboxes.size() + impl_->pool->size() >= impl_->options.slots) impl_->pool->discard_one();
    auto cold = impl_->create_cold(spec);
    if (!cold) return cold.error();
    sb = std::move(*cold);
  }
  sb->create_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - started_at).count();
  sb->touch();
  ApiSandbox& ref = *sb;
  impl_->sandboxes.emplace(spec.id, std::move(sb));
  impl_->log(spec.id + ": created for " + spec.owner + " in " + std::to_string(ref.create_ms_) + " ms" +
             (warm ? " (warm)" : ""));
  impl_->arm(ref);
  impl_->changed();
  if (impl_->pool) impl_->pool->refill();
  return report(ref);
}

bool SandboxHost::remove(const std::string& id) {
  auto it = impl_->sandboxes.find(id);
  if (it == impl_->sandboxes.end()) return false;
  std::unique_ptr<ApiSandbox> sb = std::move(it->second);
  impl_->sandboxes.erase(it);
  // Its preview URLs answer 404 from now on (stop withdraws them).
  sb->git().abandon(true);  // its checkout thread must not write into the directory removed next
  impl_->stop(*sb);
  std::error_code ec;
  fs::remove_all(sb->dir(), ec);
  if (ec) impl_->log(id + ": cannot remove " + sb->dir().string() + ": " + ec.message());
  impl_->log(id + ": removed");
  impl_->changed();
  return true;
}

bool SandboxHost::key_ok(const HttpRequest& request) const {
  std::string auth = request.header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() <= kBearer.size() || std::string_view(auth).substr(0, kBearer.size()) != kBearer) return false;
  return constant_time_equal(std::string_view(auth).substr(kBearer.size()), impl_->key);
}

ApiSandbox* SandboxHost::resolve(const HttpRequest& request, HttpResponse& error, bool wake) {
  if (!key_ok(request)) {
    error = HttpResponse::error_code(401, "unauthorized", "the data plane needs its key (Authorization: Bearer)");
    return nullptr;
  }
  auto p = request.params.find("id");
  std::string id = p == request.params.end() ? std::string() : p->second;
  ApiSandbox* sb = find(id);
  std::string owner = request.header(protocol::kOwnerHeader);
  if (sb == nullptr || owner.empty() || (owner != protocol::kAnyOwner && owner != sb->owner())) {
    // Another owner's sandbox reads as missing: existence does not leak.
    error = HttpResponse::error_code(404, "sandbox_not_found", "no sandbox \"" + id + "\"", "id");
    return nullptr;
  }
  if (sb->state_ == "error") {
    error = HttpResponse::error_code(503, "sandbox_unavailable", "sandbox " + id + " failed: " + sb->error_ +
                                                                     " (delete it and create another)");
    return nullptr;
  }
  if (!wake) return sb;
  if (Status s = resume(*sb); !s) {
    error = HttpResponse::error_code(503, "sandbox_unavailable", "sandbox " + id + ": " + s.error().message);
    return nullptr;
  }
  return sb;
}

Status SandboxHost::pause(ApiSandbox& sb, const std::string& why) { return impl_->pause(sb, why); }

Status SandboxHost::resume(ApiSandbox& sb) {
  if (sb.state_ == "error") return Error{"it failed: " + sb.error_, 0, ErrorCode::unavailable};
  if (sb.state_ == "paused") {
    if (Status s = impl_->thaw(sb); !s) {
      // Frozen for good is worse than gone: it is stopped, and the next request starts it.
      impl_->log(sb.id() + ": cannot thaw: " + s.error().message);
      stopped(sb, "it could not be thawed");
    }
  }
  if (!sb.running()) {
    if (Status s = impl_->start(sb); !s) {
      sb.error_ = "cannot start again: " + s.error().message;
      impl_->log(sb.id() + ": " + sb.error_);
      impl_->set_state(sb, "error");
      return Error{sb.error_, 0, ErrorCode::unavailable};
    }
    impl_->log(sb.id() + ": started again");
    sb.touch();
    impl_->set_state(sb, "running");
  }
  sb.touch();
  return {};
}

Status SandboxHost::set_timers(ApiSandbox& sb, const protocol::SandboxTimers& timers) {
  protocol::SandboxCreate spec = sb.spec();
  spec.timers = timers;
  if (Status s = write_meta(sb.dir(), spec); !s) return s;
  sb.set_timers(timers);
  impl_->log(sb.id() + ": timers: sleep_after_ms " + std::to_string(timers.sleep_after_ms) + ", stop_after_ms " +
             std::to_string(timers.stop_after_ms) + (timers.keep_alive ? ", keep_alive" : ""));
  impl_->arm(sb);
  impl_->changed();
  return {};
}

std::shared_ptr<void> SandboxHost::wake(executors::Sandbox& sandbox) {
  for (auto& [id, sb] : impl_->sandboxes) {
    if (sb->sandbox_.get() != &sandbox) continue;
    if (Status s = impl_->thaw(*sb); !s) {
      impl_->log(id + ": cannot thaw for a preview: " + s.error().message);
      return nullptr;
    }
    return sb->activity_lease();
  }
  return nullptr;
}

protocol::SandboxReport SandboxHost::report(const ApiSandbox& sb) const {
  return protocol::SandboxReport{sb.id(), sb.state_, unix_ms(sb.last_active()), sb.create_ms_, sb.error_,
                                 sb.ports().list()};
}

void SandboxHost::failed(ApiSandbox& sb, const std::string& why) {
  if (sb.state_ == "error") return;
  impl_->stop(sb);
  sb.error_ = why;
  impl_->log(sb.id() + ": " + why);
  impl_->set_state(sb, "error");
}

void SandboxHost::stopped(ApiSandbox& sb, const std::string& why) {
  impl_->stop(sb);
  impl_->log(sb.id() + ": stopped: " + why);
  impl_->set_state(sb, "stopped");
}

ApiSandbox* SandboxHost::find(const std::string& id) {
  auto it = impl_->sandboxes.find(id);
  return it == impl_->sandboxes.end() ? nullptr : it->second.get();
}

std::vector<protocol::SandboxReport> SandboxHost::reports() const {
  std::vector<protocol::SandboxReport> out;
  for (const auto& [id, sb] : impl_->sandboxes) out.push_back(report(*sb));
  return out;
}

size_t SandboxHost::free_slots() const {
  size_t used = impl_->sandboxes.size();
  return used >= impl_->options.slots ? 0 : impl_->options.slots - used;
}

int64_t SandboxHost::memory_free_bytes() const {
  int64_t used = 0;
  for (const auto& [id, sb] : impl_->sandboxes) {
    if (sb->running()) used += sb->spec().resources.memory_bytes;
  }
  if (impl_->pool) used += static_cast<int64_t>(impl_->pool->size()) * protocol::SandboxResources{}.memory_bytes;
  return std::max<int64_t>(0, impl_->options.memory_budget_bytes - used);
}

const std::string& SandboxHost::key() const { return impl_->key; }
boost::asio::io_context& SandboxHost::io() { return impl_->io; }
const SandboxHostOptions& SandboxHost::options() const { return impl_->options; }
const std::shared_ptr<std::atomic<size_t>>& SandboxHost::git_threads() const { return impl_->git_threads; }

void SandboxHost::check_disks(std::function<void()> done) {
  std::vector<std::string> ids;
  for (const auto& [id, sb] : impl_->sandboxes) {
    if (sb->running()) ids.push_back(id);
  }
  if (ids.empty()) {
    if (done) boost::asio::post(impl_->io, std::move(done));
    return;
  }
  auto left = std::make_shared<size_t>(ids.size());
  auto all = std::make_shared<std::function<void()>>(std::move(done));
  for (const auto& id : ids) {
    measure_disk(id, [left, all] {
      if (--*left == 0 && *all) (*all)();
    });
  }
}

void SandboxHost::measure_disk(const std::string& id, std::function<void()> done) {
  auto it = impl_->measuring.find(id);
  if (it != impl_->measuring.end()) {
    it->second.next.push_back(std::move(done));  // after the walk running (coalesced)
    return;
  }
  start_measure(id, {std::move(done)});
}

void SandboxHost::start_measure(const std::string& id, std::vector<std::function<void()>> waiting) {
  ApiSandbox* sb = find(id);
  if (sb == nullptr) {
    for (auto& done : waiting) {
      if (done) boost::asio::post(impl_->io, std::move(done));
    }
    return;
  }
  impl_->measuring[id].now = std::move(waiting);
  ++impl_->disk_walks;
  impl_->disk_meter->measure(sb->workspace_dir(), sb->disk().limit(), [this, id](Result<DiskMeter::Usage> usage) {
    impl_->disk_measured(id, usage);
    auto node = impl_->measuring.extract(id);
    // The next walk first: a `done` that measures again then joins it rather than start another.
    if (!node.mapped().next.empty()) start_measure(id, std::move(node.mapped().next));
    for (auto& done : node.mapped().now) {
      if (done) done();
    }
  });
}

bool SandboxHost::measuring_disk(const std::string& id) const { return impl_->measuring.count(id) > 0; }
uint64_t SandboxHost::disk_walks() const { return impl_->disk_walks; }
DiskMeter& SandboxHost::disk_meter() { return *impl_->disk_meter; }

size_t SandboxHost::warm_ready() const { return impl_->pool ? impl_->pool->size() : 0; }

void SandboxHost::shutdown() {
  // The periodic disk check re-arms itself: stopped, or the agent's io_context never runs out
  // of work and the process hangs on SIGTERM.
  impl_->options.disk_check_every = std::chrono::milliseconds(0);
  if (impl_->disk_timer) impl_->disk_timer->cancel();
  if (impl_->pool) impl_->pool->clear();
  for (auto& [id, sb] : impl_->sandboxes) {
    if (sb->idle_timer_) sb->idle_timer_->cancel();
    impl_->stop(*sb);
  }
}

}  // namespace boxcar::sandboxes
