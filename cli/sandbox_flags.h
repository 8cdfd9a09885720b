// The sandbox API flags of `boxcar agent` and `boxcar serve` (for its first in-process agent):
// --sandbox-slots, --sandbox-listen, --sandbox-advertise, --sandbox-warm. Parsed and checked in one place, so
// the two commands agree (shared/SANDBOXES.md §1.1).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

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
    "  --sandbox-warm N         sandboxes of the default spec kept ready, so such a create takes\n"
    "                           one (default 0: every create sets one up; at most 64 and the slots)\n";

// `specs` and the sandbox flags: what a command passes to parse_flags.
std::vector<FlagSpec> with_sandbox_flags(std::vector<FlagSpec> specs);

struct SandboxSettings {
  size_t slots = 1000;
  std::string listen = "127.0.0.1:0";
  std::string advertise;  // "": the bound listen address
  size_t warm = 0;        // --sandbox-warm: off by default, since each one holds memory and a job network
};

// Errors (usage) name the flag, the value and the form it takes.
Result<SandboxSettings> read_sandbox_flags(const ParsedFlags& flags);

}  // namespace boxcar::cli
