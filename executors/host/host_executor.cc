#include "executors/host/host_executor.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <system_error>

#include "executors/host/host_sandbox.h"
#include "executors/host/process_tree.h"

namespace boxcar::executors {

namespace {

using host::HostSandbox;
using host::TreeRoot;

// Sandbox names are unique in the process, so that two jobs with the same id never share
// a cgroup.
std::atomic<uint64_t> g_last_sandbox{0};

// A job id as a cgroup directory name: [A-Za-z0-9_.-], at most 64 characters.
std::string directory_name(const std::string& id) {
  std::string name;
  for (char c : id.substr(0, 64)) {
    bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '-';
    name += safe ? c : '_';
  }
  if (name.empty() || name[0] == '.') name.insert(0, "job");
  return name;
}

class HostJob final : public Job {
 public:
  HostJob(boost::asio::io_context& io, std::shared_ptr<TreeRoot> root, JobSpec spec)
      : io_(io), root_(std::move(root)), spec_(std::move(spec)) {}
  ~HostJob() override { destroy(); }

  Result<std::unique_ptr<Sandbox>> start(const SandboxSpec& spec) override {
    if (destroyed_) return Error{"job " + spec_.id + " was destroyed", ESRCH};
    if (auto valid = validate(spec); !valid) return valid.error();
    // No mount namespace to give a step its own layer in: never share the workspace silently.
    if (!spec.layered.empty()) {
      return Error{"step \"" + spec.name +
                       "\": the host executor cannot give a step its own workspace layer (it has no mount "
                       "namespace); its steps share the workspace",
                   ENOTSUP};
    }
    if (spec.image != "host") {
      return Error{"step \"" + spec.name +
                       "\": the host executor runs only image \"host\", not \"" + spec.image + "\"",
                   ENOTSUP};
    }
    auto tree = root_->sandbox(directory_name(spec_.id) + "." + std::to_string(++g_last_sandbox));
    if (!tree) return tree.error();
    auto sandbox = std::make_unique<HostSandbox>(io_, spec_.workspace, std::move(*tree));
    std::erase_if(sandboxes_, [](const auto& weak) { return weak.expired(); });
    sandboxes_.push_back(sandbox->core());
    return std::unique_ptr<Sandbox>(std::move(sandbox));
  }

  std::string workspace_path() const override { return spec_.workspace.string(); }

  void destroy() override {
    destroyed_ = true;
    for (const auto& weak : sandboxes_) HostSandbox::destroy_core(weak);
    sandboxes_.clear();
  }

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<TreeRoot> root_;
  JobSpec spec_;
  std::vector<std::weak_ptr<HostSandbox::Core>> sandboxes_;
  bool destroyed_ = false;
};

class HostExecutor final : public Executor {
 public:
  HostExecutor(boost::asio::io_context& io, HostOptions options)
      : io_(io), root_(TreeRoot::open(options.cgroups)) {}

  std::string_view name() const override { return "host"; }
  bool isolated() const override { return false; }

  Result<std::unique_ptr<Job>> prepare(const JobSpec& spec) override {
    std::error_code ec;
    std::filesystem::path workspace = std::filesystem::absolute(spec.workspace, ec);
    if (ec) return Error{"workspace " + spec.workspace.string() + ": " + ec.message(), ec.value()};
    auto status = std::filesystem::status(workspace, ec);
    if (ec || !std::filesystem::exists(status)) {
      return Error{"workspace " + workspace.string() + " does not exist", ENOENT};
    }
    if (!std::filesystem::is_directory(status)) {
      return Error{"workspace " + workspace.string() + " is not a directory", ENOTDIR};
    }
    // Crash safety: what a dead agent left behind goes before new work starts.
    for (auto& tree : root_->sweep_dead_owners()) host::remove_when_empty(io_, std::move(tree));

    JobSpec job = spec;
    job.workspace = workspace;
    return std::unique_ptr<Job>(std::make_unique<HostJob>(io_, root_, std::move(job)));
  }

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<TreeRoot> root_;
};

}  // namespace

std::unique_ptr<Executor> make_host_executor(boost::asio::io_context& io) {
  return make_host_executor(io, HostOptions{});
}

std::unique_ptr<Executor> make_host_executor(boost::asio::io_context& io, HostOptions options) {
  return std::make_unique<HostExecutor>(io, options);
}

}  // namespace boxcar::executors
