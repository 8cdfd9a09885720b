// The exposed ports of one sandbox (SANDBOXES.md §2.7): what the preview proxy published for
// each, at most kMaxPorts of them. Data only: routes_ports.cc publishes and withdraws through
// SandboxHostOptions::publish_port / withdraw_port and keeps this table in step.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <vector>

#include "base/result.h"

#include "protocol/sandbox_api.h"

namespace boxcar::sandboxes {

class PortTable {
 public:
  static constexpr size_t kMaxPorts = 16;

  // The exposure of `port`, or null.
  const protocol::SandboxPort* find(uint16_t port) const;
  // Records an exposure; false when kMaxPorts are exposed already (replacing one is fine).
  bool add(protocol::SandboxPort port);
  // false when `port` was not exposed.
  bool remove(uint16_t port);
  // By port number (for GET /ports and the sync's report).
  std::vector<protocol::SandboxPort> list() const;
  std::vector<uint16_t> ports() const;
  size_t size() const { return ports_.size(); }

  // <sandbox dir>/ports.json (outside the sandbox's view): the exposures, so that a restarted
  // agent publishes them again under the same tokens (SANDBOXES.md §2.7: exposures survive
  // pause, stop and agent restarts). Written whole (json_file.h).
  Status save(const std::filesystem::path& file) const;
  // What save() wrote (nothing when the file is missing); an unreadable file is an Error.
  Status load(const std::filesystem::path& file);

 private:
  std::map<uint16_t, protocol::SandboxPort> ports_;
};

}  // namespace boxcar::sandboxes
