// The agent's registration with its server, kept in its data directory
// (<data>/agent-credential.json, mode 0600, in the 0700 data directory) so that a restarted
// agent keeps its name and credential instead of registering again.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "base/result.h"

namespace boxcar::agent {

struct AgentCredential {
  std::string server;      // the server URL it was registered with: used with no other
  int64_t agent_id = 0;
  std::string name;
  std::string credential;  // "<agent id>.<secret>"
};

std::filesystem::path credential_path(const std::filesystem::path& data_dir);

// The stored registration, if there is one for `server`; one for another server is not
// returned (a credential goes to no server but its own). An unreadable file is an Error.
Result<std::optional<AgentCredential>> load_credential(const std::filesystem::path& data_dir,
                                                       const std::string& server);

// Replaces the stored registration atomically (a temporary file, fsync, rename); the file is
// created 0600, never readable by others even for a moment.
Status save_credential(const std::filesystem::path& data_dir, const AgentCredential& credential);

// Removes it (a credential the server no longer accepts).
void forget_credential(const std::filesystem::path& data_dir);

}  // namespace boxcar::agent
