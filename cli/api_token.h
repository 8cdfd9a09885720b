// The client commands' API token (submit, jobs, logs, cancel, artifacts): --token,
// --token-file or BOXCAR_API_TOKEN; else, for a server on loopback, the token `boxcar serve`
// generated in its default data directory, when this user can read it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"
#include "cli/api_client.h"
#include "cli/flags.h"

namespace boxcar::cli {

// Where `boxcar serve` keeps its data by default: /var/lib/boxcar as root, else
// ~/.local/share/boxcar.
std::filesystem::path default_serve_data_dir();

// The generated token's file in a data directory.
std::filesystem::path api_token_file(const std::filesystem::path& data_dir);

// `specs` and --server, --token and --token-file, for a client command's parse_flags.
std::vector<FlagSpec> with_api_client_flags(std::vector<FlagSpec> specs);

// The help text's lines about the token.
extern const char* const kApiTokenHelp;

// Where a client command talks to and with what: --server (or BOXCAR_SERVER), the token found
// as api_client_for finds it ("" for none), and --ca-file (or BOXCAR_CA_FILE). For clients built
// on another transport (the sandbox client).
struct ApiTarget {
  std::string server;
  std::string token;
  std::string ca_file;
};
Result<ApiTarget> api_target_for(const ParsedFlags& flags, const std::string& command);

// An ApiClient for --server (or BOXCAR_SERVER) that sends the token. Errors: a bad URL, an
// unreadable --token-file.
Result<ApiClient> api_client_for(const ParsedFlags& flags, const std::string& command);

}  // namespace boxcar::cli
