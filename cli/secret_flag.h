// Secret flags: every secret boxcar takes (tokens, webhook secrets, a database URL with its
// password) comes as --NAME VALUE, --NAME-file FILE or an environment variable. On the command
// line it is visible to every local user in ps and /proc, so boxcar warns when it is used.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "cli/flags.h"

namespace boxcar::cli {

struct SecretFlag {
  std::string flag;  // "--agent-token"; its file form is "--agent-token-file"
  std::string env;   // "BOXCAR_AGENT_TOKEN"
  // Whether a value given on the command line holds a secret (nullptr: always). A database URL
  // without a password is no secret.
  bool (*is_secret)(const std::string& value) = nullptr;
};

// The FlagSpecs of --NAME and --NAME-file, for parse_flags.
std::vector<FlagSpec> secret_flag_specs(const SecretFlag& secret);

// The secret from --NAME (with a warning on stderr naming `command` and the safer forms), else
// --NAME-file, else the environment; nullopt when none is set (an empty variable is unset).
// Errors: both --NAME and --NAME-file given; a file that cannot be read, is empty or too large.
Result<std::optional<std::string>> read_secret(const ParsedFlags& flags, const SecretFlag& secret,
                                               const std::string& command);

// A secret file: at most 64 KiB, its trailing newline (and CR) stripped; empty is an error.
Result<std::string> read_secret_file(const std::filesystem::path& file, const std::string& flag);

}  // namespace boxcar::cli
