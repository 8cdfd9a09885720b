// The sandbox API flags of `boxcar agent` and `boxcar serve` (for its first in-process agent):
// --sandbox-slots, --sandbox-listen, --sandbox-advertise, --sandbox-git-allow-private,
// --sandbox-sync-interval, --sandbox-warm. Parsed and checked in one place, so
// the two commands agree (shared/SANDBOXES.md §1.1).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "base/duration.h"
#include "base/result.h"
#include "cli/flags.h"

namespace boxcar::cli {

inline constexpr const char* kSandboxFlagsUsage =
    "  sandboxes (the sandbox API, docs/sandboxes.md):\n"
    "  --sandbox-slots N        sandboxes this agent hosts at most (default 1000; 0: hosting off);\n"
    "                           they need the native executor\n"
    "  --sandbox-listen ADDR:PORT  the data plane the server's gateway forwards sandbox requests to\n"
    "                           (default 127.0.0.1:0, a free loopback port)\n"
    "  --sandbox-advertise URL  how the server reaches that port (http://10.0.0.7:8471); required\n"
    "                           when --sandbox-listen is not a loopback address\n"
    "  --sandbox-git-allow-private  POST /git/checkout may fetch from loopback, private and link-local\n"
    "                           addresses (refused by default: the agent's network is not the caller's)\n"
    "  --sandbox-sync-interval DURATION  how often the agent reports its sandboxes when nothing\n"
    "                           changes (default 5s; serve's own agent: a third of\n"
    "                           --sandbox-lost-after); the server's --sandbox-lost-after must be\n"
    "                           about 3 times this or more\n"
    "  --sandbox-warm N         sandboxes of the default spec kept ready, so such a create takes\n"
    "                           one (default 0: every create sets one up; at most 64 and the slots)\n";

// `specs` and the sandbox flags: what a command passes to parse_flags.
std::vector<FlagSpec> with_sandbox_flags(std::vector<FlagSpec> specs);

struct SandboxSettings {
  size_t slots = 1000;
  std::string listen = "127.0.0.1:0";
  std::string advertise;  // "": the bound listen address
  bool git_allow_private = false;  // --sandbox-git-allow-private (the SSRF guard off)
  std::optional<Millis> sync_interval;  // none: the command's default
  size_t warm = 0;        // --sandbox-warm: off by default, since each one holds memory and a job network
};

// Errors (usage) name the flag, the value and the form it takes.
Result<SandboxSettings> read_sandbox_flags(const ParsedFlags& flags);

}  // namespace boxcar::cli
