// The flags of `boxcar serve` that bound its queue and its logs (README "Limits"):
// --max-attempts, --job-retention, --max-job-log, --max-followers-per-job,
// --max-followers-per-client, --max-secrets-per-scope, the sandbox API's --max-sandboxes,
// --max-sandboxes-per-token, --sandbox-max-ttl and --sandbox-lost-after; and
// --keep-superseded-on-default.
#pragma once

#include <vector>

#include "base/result.h"
#include "cli/flags.h"
#include "server/server.h"

namespace boxcar::cli {

// For serve's usage text, one flag per line.
extern const char* const kServeQueueUsage;

std::vector<FlagSpec> serve_queue_flag_specs();

// Sets `options` from the flags given (the others keep their defaults). An Error names the flag,
// the value and what it should look like.
Status apply_serve_queue_flags(const ParsedFlags& flags, server::ServerConfig& options);

}  // namespace boxcar::cli
