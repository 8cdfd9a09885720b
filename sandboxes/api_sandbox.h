// ApiSandbox: one live sandbox of the sandbox API on this agent (SandboxHost holds them): its
// executor Job and Sandbox, the create spec, and the state of each concern, owned here and
// defined by its piece (sessions.h, process_table.h, port_table.h).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "executors/executor.h"
#include "protocol/sandbox_api.h"
#include "sandboxes/port_table.h"
#include "sandboxes/process_table.h"
#include "sandboxes/sessions.h"

namespace boxcar::sandboxes {

class ApiSandbox {
 public:
  const std::string& id() const { return spec_.id; }
  const std::string& owner() const { return spec_.owner; }
  const protocol::SandboxCreate& spec() const { return spec_; }
  // <data>/sandboxes/<id>/: workspace/ (the sandbox's /workspace), logs/, meta.json.
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path workspace_dir() const { return dir_ / "workspace"; }
  std::filesystem::path logs_dir() const { return dir_ / "logs"; }

  // Running (SandboxHost::resolve made sure): the executor's sandbox.
  executors::Sandbox& sandbox() { return *sandbox_; }
  bool running() const { return sandbox_ != nullptr; }

  // The environment every command starts from (PATH, HOME=/root, LANG, TERM, HOSTNAME,
  // BOXCAR_SANDBOX=<id>, and the create spec's env), as "NAME=value".
  std::vector<std::string> base_env() const;

  Sessions& sessions() { return sessions_; }
  ProcessTable& processes() { return processes_; }
  PortTable& ports() { return ports_; }

  // For SandboxHost.
  ApiSandbox(protocol::SandboxCreate spec, std::filesystem::path dir)
      : spec_(std::move(spec)), dir_(std::move(dir)) {}
  std::unique_ptr<executors::Job> job_;
  std::unique_ptr<executors::Sandbox> sandbox_;
  std::string state_ = "creating";
  std::string error_;  // state "error": why (the sandbox's init died, it could not start again)
  int64_t create_ms_ = 0;
  std::chrono::system_clock::time_point last_active_{};
  int netns_ = -1;     // from SandboxHostOptions::make_netns, released with the sandbox
  std::string netns_key_;  // what make_netns was called with: the id, or the warm sandbox's name

 private:
  protocol::SandboxCreate spec_;
  std::filesystem::path dir_;
  Sessions sessions_;
  ProcessTable processes_;
  PortTable ports_;
};

}  // namespace boxcar::sandboxes
