// API tokens: who may call the user API and with which scopes (DESIGN.md section 6), and the
// TOML file of `serve --api-tokens` that lists them by the SHA-256 of their secret.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace boxcar::server {

// read: GET jobs, logs, artifacts, previews and /metrics. write: submit and cancel (and read,
// to follow what was submitted). admin: everything, agents and secrets included. sandboxes:
// the stand-alone sandbox API, nothing else.
enum class Scope : unsigned { read = 1, write = 2, admin = 4, sandboxes = 8 };

const char* scope_name(Scope scope);

struct ApiToken {
  std::string name;
  std::string sha256;   // lowercase hex of the secret's SHA-256; the secret itself is not kept
  unsigned scopes = 0;  // Scope bits
  // Sandboxes this token may hold at once (the file's max_sandboxes); unset: the server's
  // --max-sandboxes-per-token.
  std::optional<int64_t> max_sandboxes;

  bool allows(Scope scope) const;
};

// A token with every scope, from its secret (`serve --api-token`, the generated one).
ApiToken admin_token(std::string name, std::string_view secret);

// The token whose secret is `secret`, or nullptr. Compares digests, each in constant time, so
// the answer's timing says nothing about how much of a secret was right.
const ApiToken* find_api_token(const std::vector<ApiToken>& tokens, std::string_view secret);

// Parses the --api-tokens file:
//   [[token]]
//   name = "ci-bot"
//   sha256 = "<64 hex digits: sha256sum of the secret>"
//   scopes = ["read", "write"]
//   max_sandboxes = 10        (optional)
// Errors are "file:line:col: what is wrong (how to fix it)".
Result<std::vector<ApiToken>> parse_api_tokens(std::string_view text, const std::string& file);
Result<std::vector<ApiToken>> load_api_tokens(const std::filesystem::path& file);

}  // namespace boxcar::server
