// A Sandbox as the API shows it (SANDBOXES.md §2.1): the row, its spec and its agent rendered
// as JSON, with the state read through the agent's last sync (`lost` when it stopped syncing).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>

#include <boost/json/value.hpp>

#include "server/api.h"

namespace boxcar::server {

// The Sandbox JSON of `s`, hosted by `agent` (none: lost) named `agent_name`.
boost::json::value sandbox_json(const SandboxRecord& s, const std::optional<SandboxAgentRecord>& agent,
                                const std::string& agent_name, UnixMillis now, UnixMillis lost_after_ms);

// Renders sandboxes for one answer, reading each hosting agent from the store once.
class SandboxJson {
 public:
  explicit SandboxJson(ApiContext& ctx) : ctx_(ctx) {}
  boost::json::value of(const SandboxRecord& s, UnixMillis now);

 private:
  using Agent = std::pair<std::optional<SandboxAgentRecord>, std::string>;  // the record, its name
  Agent& lookup(int64_t id);
  ApiContext& ctx_;
  std::map<int64_t, Agent> agents_;
};

}  // namespace boxcar::server
