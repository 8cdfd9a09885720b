#include "sandboxes/sandbox_host.h"

#include "sandboxes/command_run.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <boost/json.hpp>

#include "base/private_dir.h"
#include "base/random_token.h"
#include "protocol/json_reader.h"
#include "sandboxes/api_sandbox.h"
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

// meta.json is written whole to a temp file and renamed, so a crash never leaves half of one
// for adopt() to trip over.
Status write_meta(const fs::path& dir, const protocol::SandboxCreate& spec) {
  fs::path tmp = dir / "meta.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json::serialize(protocol::to_json(spec));
    if (!out) return Error{"cannot write " + tmp.string()};
  }
  std::error_code ec;
  fs::rename(tmp, dir / "meta.json", ec);
  if (ec) return Error{"cannot write " + (dir / "meta.json").string() + ": " + ec.message()};
  return {};
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
  fs::path root;  // <data>/sandboxes
  std::string key;
  std::map<std::string, std::unique_ptr<ApiSandbox>> sandboxes;
  std::unique_ptr<WarmPool> pool;  // null without --sandbox-warm
  uint64_t warm_made = 0;          // names .warm-<n>

  void log(const std::string& line) const {
    if (options.log) options.log("sandbox " + line);
  }
  void changed() const {
    if (options.on_change) options.on_change();
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
    : impl_(std::make_unique<Impl>(Impl{io, executor, std::move(options), {}, {}, {}, {}, 0})) {
  impl_->root = impl_->options.data_dir / "sandboxes";
  impl_->key = impl_->options.key;
  if (impl_->key.empty()) {
    auto token = random_token(32);
    if (!token) abort_without_randomness(token.error());
    impl_->key = *token;
  }
  if (impl_->options.memory_budget_bytes == 0) impl_->options.memory_budget_bytes = mem_available_bytes();
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
    sb->state_ = "stopped";
    sb->last_active_ = std::chrono::system_clock::now();
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
  sb->last_active_ = std::chrono::system_clock::now();
  ApiSandbox& ref = *sb;
  impl_->sandboxes.emplace(spec.id, std::move(sb));
  impl_->log(spec.id + ": created for " + spec.owner + " in " + std::to_string(ref.create_ms_) + " ms" +
             (warm ? " (warm)" : ""));
  impl_->changed();
  if (impl_->pool) impl_->pool->refill();
  protocol::SandboxReport report{spec.id, ref.state_, unix_ms(ref.last_active_), ref.create_ms_, {}, {}};
  return report;
}

bool SandboxHost::remove(const std::string& id) {
  auto it = impl_->sandboxes.find(id);
  if (it == impl_->sandboxes.end()) return false;
  std::unique_ptr<ApiSandbox> sb = std::move(it->second);
  impl_->sandboxes.erase(it);
  // Its preview URLs answer 404 from now on (routes_ports.cc publishes them).
  if (impl_->options.withdraw_port && sb->running()) {
    for (uint16_t port : sb->ports().ports()) impl_->options.withdraw_port(sb->sandbox(), port);
  }
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

ApiSandbox* SandboxHost::resolve(const HttpRequest& request, HttpResponse& error) {
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
  if (!sb->running()) {
    if (Status s = impl_->start(*sb); !s) {
      sb->state_ = "error";
      sb->error_ = "cannot start again: " + s.error().message;
      impl_->log(id + ": " + sb->error_);
      impl_->changed();
      error = HttpResponse::error_code(503, "sandbox_unavailable", "sandbox " + id + ": " + sb->error_);
      return nullptr;
    }
    impl_->log(id + ": started again");
    impl_->changed();
  }
  sb->last_active_ = std::chrono::system_clock::now();
  return sb;
}

void SandboxHost::failed(ApiSandbox& sb, const std::string& why) {
  if (sb.state_ == "error") return;
  impl_->stop(sb);
  sb.state_ = "error";
  sb.error_ = why;
  impl_->log(sb.id() + ": " + why);
  impl_->changed();
}

void SandboxHost::stopped(ApiSandbox& sb, const std::string& why) {
  impl_->stop(sb);
  sb.state_ = "stopped";
  impl_->log(sb.id() + ": stopped: " + why);
  impl_->changed();
}

ApiSandbox* SandboxHost::find(const std::string& id) {
  auto it = impl_->sandboxes.find(id);
  return it == impl_->sandboxes.end() ? nullptr : it->second.get();
}

std::vector<protocol::SandboxReport> SandboxHost::reports() const {
  std::vector<protocol::SandboxReport> out;
  for (const auto& [id, sb] : impl_->sandboxes) {
    out.push_back(protocol::SandboxReport{id, sb->state_, unix_ms(sb->last_active_), sb->create_ms_, sb->error_, sb->ports().list()});
  }
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

size_t SandboxHost::warm_ready() const { return impl_->pool ? impl_->pool->size() : 0; }

void SandboxHost::shutdown() {
  if (impl_->pool) impl_->pool->clear();
  for (auto& [id, sb] : impl_->sandboxes) impl_->stop(*sb);
}

}  // namespace boxcar::sandboxes
