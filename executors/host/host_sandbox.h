// HostSandbox: one step's commands as plain host processes, each in its own tracked process
// tree; stop() with a grace period, destroy() at once. Internal to the host executor.
#pragma once

#include <filesystem>
#include <memory>

#include "executors/executor.h"
#include "executors/host/process_tree.h"

namespace boost::asio {
class io_context;
}

namespace boxcar::executors::host {

class HostSandbox final : public Sandbox {
 public:
  class Core;  // the state callbacks keep alive; see host_sandbox.cc

  HostSandbox(boost::asio::io_context& io, std::filesystem::path workspace,
              std::unique_ptr<ProcessTree> tree);
  ~HostSandbox() override;  // destroy()

  Status exec(const ExecRequest& request, ExecHandlers handlers) override;
  void stop(Outcome::Kind reason, Millis grace) override;
  void destroy() override;
  Result<unique_fd> connect_tcp(uint16_t port) override;

  // Lets the job destroy the sandbox while its owner still holds the object.
  std::weak_ptr<Core> core() const { return core_; }
  static void destroy_core(const std::weak_ptr<Core>& core);

 private:
  std::shared_ptr<Core> core_;
};

// Kills what is left in `tree` and removes it once empty, retrying on `io` for up to a minute
// (what is still left then is removed by the next agent's sweep of dead owners).
void remove_when_empty(boost::asio::io_context& io, std::unique_ptr<ProcessTree> tree);

}  // namespace boxcar::executors::host
