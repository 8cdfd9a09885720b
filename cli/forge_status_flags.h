// The flags of `boxcar serve` that connect it to forges for commit statuses: --github-token,
// --github-api-url, --gitea-token, --gitea-url, --gitlab-token, --gitlab-url (tokens also as
// --NAME-file or BOXCAR_*_TOKEN, see secret_flag.h).
#pragma once

#include <vector>

#include "base/result.h"
#include "cli/flags.h"
#include "server/server.h"

namespace boxcar::cli {

// For serve's usage text.
extern const char* const kForgeStatusUsage;

std::vector<FlagSpec> forge_status_flag_specs();

// Sets `options` from the flags and environment. An Error names the flag, the value and what it
// should look like (an API root or origin that is not an https URL, a token over plain http).
Status apply_forge_status_flags(const ParsedFlags& flags, server::ServerConfig& options);

}  // namespace boxcar::cli
