#include "server/api_tokens.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "base/random_token.h"
#include "base/sha256.h"
#include "base/suggest.h"

namespace boxcar::server {

namespace {

constexpr size_t kMaxFileBytes = 1 << 20;

struct ScopeName {
  Scope scope;
  const char* name;
};
constexpr ScopeName kScopes[] = {{Scope::read, "read"},
                                 {Scope::write, "write"},
                                 {Scope::admin, "admin"},
                                 {Scope::sandboxes, "sandboxes"}};

unsigned bit(Scope s) { return static_cast<unsigned>(s); }

std::string where(const std::string& file, const toml::source_region& at) {
  return file + ":" + std::to_string(at.begin.line) + ":" + std::to_string(at.begin.column) + ": ";
}

Result<ApiToken> parse_entry(const toml::table& entry, const std::string& file) {
  static const std::vector<std::string> kKeys = {"name", "sha256", "scopes", "max_sandboxes"};
  for (const auto& [key, value] : entry) {
    std::string k(key.str());
    if (k == "name" || k == "sha256" || k == "scopes" || k == "max_sandboxes") continue;
    auto near = closest_match(k, kKeys);
    return Error{where(file, value.source()) + "unknown key \"" + k + "\"" +
                 (near ? " (did you mean \"" + *near + "\"?)" : " (keys: name, sha256, scopes, max_sandboxes)")};
  }
  ApiToken token;
  auto name = entry["name"].value<std::string>();
  if (!name || name->empty()) {
    return Error{where(file, entry.source()) + "a [[token]] needs name = \"...\" (who holds it)"};
  }
  // The name owns sandboxes and travels to agents as X-Boxcar-Owner, where "*" means "any
  // owner" (an admin): a plain name only.
  if (name->size() > 64 || name->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-@") !=
                               std::string::npos) {
    return Error{where(file, entry.source()) + "token name \"" + *name +
                 "\": use at most 64 letters, digits and _ . - @"};
  }
  token.name = *name;
  auto sha = entry["sha256"].value<std::string>();
  if (!sha) {
    return Error{where(file, entry.source()) + "token \"" + token.name +
                 "\" needs sha256 = \"...\" (the output of: printf %s TOKEN | sha256sum)"};
  }
  token.sha256 = *sha;
  for (char& c : token.sha256) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!is_sha256_hex(token.sha256)) {
    return Error{where(file, entry.get("sha256")->source()) + "token \"" + token.name +
                 "\": sha256 must be 64 hex digits (printf %s TOKEN | sha256sum), not \"" + *sha +
                 "\""};
  }
  const toml::array* scopes = entry["scopes"].as_array();
  if (!scopes || scopes->empty()) {
    return Error{where(file, entry.source()) + "token \"" + token.name +
                 "\" needs scopes = [...] (any of \"read\", \"write\", \"admin\", \"sandboxes\")"};
  }
  for (const auto& s : *scopes) {
    auto text = s.value<std::string>();
    bool known = false;
    for (const auto& [scope, scope_text] : kScopes) {
      if (text && *text == scope_text) {
        token.scopes |= bit(scope);
        known = true;
      }
    }
    if (!known) {
      auto near = text ? closest_match(*text, {"read", "write", "admin", "sandboxes"}) : std::nullopt;
      return Error{where(file, s.source()) + "token \"" + token.name + "\": unknown scope " +
                   (text ? "\"" + *text + "\"" : std::string("(not a string)")) +
                   (near ? " (did you mean \"" + *near + "\"?)"
                         : " (one of \"read\", \"write\", \"admin\", \"sandboxes\")")};
    }
  }
  if (const auto* node = entry.get("max_sandboxes")) {
    auto max = node->value<int64_t>();
    if (!node->is_integer() || !max || *max < 0) {
      return Error{where(file, node->source()) + "token \"" + token.name +
                   "\": max_sandboxes must be a whole number >= 0 (its sandboxes at most at once)"};
    }
    token.max_sandboxes = *max;
  }
  return token;
}

}  // namespace

const char* scope_name(Scope scope) {
  for (const auto& [s, name] : kScopes) {
    if (s == scope) return name;
  }
  return "?";
}

bool ApiToken::allows(Scope scope) const {
  if (scopes & bit(Scope::admin)) return true;
  if (scope == Scope::read && (scopes & bit(Scope::write))) return true;
  return (scopes & bit(scope)) != 0;
}

ApiToken admin_token(std::string name, std::string_view secret) {
  return ApiToken{std::move(name), sha256_hex(secret), bit(Scope::admin), std::nullopt};
}

const ApiToken* find_api_token(const std::vector<ApiToken>& tokens, std::string_view secret) {
  if (secret.empty()) return nullptr;
  std::string digest = sha256_hex(secret);
  const ApiToken* found = nullptr;
  for (const ApiToken& t : tokens) {
    if (constant_time_equal(digest, t.sha256) && !found) found = &t;
  }
  return found;
}

Result<std::vector<ApiToken>> parse_api_tokens(std::string_view text, const std::string& file) {
  toml::table doc;
  try {
    doc = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    return Error{where(file, e.source()) + std::string(e.description())};
  }
  for (const auto& [key, value] : doc) {
    if (key.str() != "token") {
      return Error{where(file, value.source()) + "unknown key \"" + std::string(key.str()) +
                   "\" (the file holds [[token]] tables)"};
    }
  }
  const toml::array* entries = doc["token"].as_array();
  if (!entries || entries->empty()) {
    return Error{file + ": no [[token]] tables (each has name, sha256 and scopes)"};
  }
  std::vector<ApiToken> out;
  std::set<std::string> names, digests;
  for (const auto& node : *entries) {
    const toml::table* entry = node.as_table();
    if (!entry) return Error{where(file, node.source()) + "\"token\" must be an array of tables ([[token]])"};
    auto token = parse_entry(*entry, file);
    if (!token) return token.error();
    if (!names.insert(token->name).second) {
      return Error{where(file, entry->source()) + "two tokens are named \"" + token->name + "\""};
    }
    if (!digests.insert(token->sha256).second) {
      return Error{where(file, entry->source()) + "token \"" + token->name +
                   "\" has the same sha256 as an earlier one"};
    }
    out.push_back(std::move(*token));
  }
  return out;
}

Result<std::vector<ApiToken>> load_api_tokens(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error{"cannot read the API token file " + file.string() + ": " + std::strerror(errno)};
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes) {
    return Error{file.string() + ": larger than 1 MiB; is this the API token file?"};
  }
  return parse_api_tokens(text, file.string());
}

}  // namespace boxcar::server
