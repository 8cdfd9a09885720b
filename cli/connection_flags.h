// The connection flags of the daemons: caps on the connections of `boxcar serve`'s API
// listener and of the preview proxy (serve, agent), and the API's slowloris timeouts.
// Without them the caps come from the process's open-file limit (base/connection_limits.h),
// so that a flood meets a cap, answered at once, before it meets EMFILE.
#pragma once

#include <vector>

#include "base/connection_limits.h"
#include "base/duration.h"
#include "base/result.h"
#include "cli/flags.h"
#include "http/http_server.h"

namespace boxcar::cli {

// --max-connections N, --max-connections-per-client N, --header-timeout D, --idle-timeout D
std::vector<FlagSpec> api_connection_flag_specs();
// --preview-max-connections N, --preview-max-connections-per-client N
std::vector<FlagSpec> preview_connection_flag_specs();

// Sets the listener's caps and timeouts in `http` from the flags, or their defaults (the caps
// from open_file_limit(): call raise_open_file_limit() first). An Error is a usage message
// naming the flag.
Status read_api_connection_flags(const ParsedFlags& flags, server::HttpServerOptions& http);
Result<ConnectionLimits> preview_connection_limits(const ParsedFlags& flags);

}  // namespace boxcar::cli
