// DockerAuth: basic credentials per registry from a Docker-format config.json ("auths"), the
// file `docker login` writes. Credential helpers (credHelpers, credsStore) run other programs
// and are not supported: a registry whose only entry is there gets a note saying so, which the
// registry client adds to its error when the registry then asks for credentials.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "base/result.h"

namespace boxcar::images {

struct BasicCredentials {
  std::string username;
  std::string password;
};

struct RegistryCredentials {
  std::optional<BasicCredentials> basic;
  std::string unsupported;  // set when the file names a helper for the registry instead
};

class DockerAuth {
 public:
  DockerAuth() = default;  // no credentials at all
  // Reads `file` (usage error when it cannot be read or parsed, naming it). Empty `file`:
  // $DOCKER_CONFIG/config.json, else ~/.docker/config.json, when they exist.
  static Result<DockerAuth> load(const std::filesystem::path& file);
  static Result<DockerAuth> parse(std::string_view text, const std::string& source);

  // Credentials for `registry` ("docker.io", "host:port"), keys matched the way Docker does:
  // scheme and path ignored, "https://index.docker.io/v1/" for docker.io.
  RegistryCredentials lookup(const std::string& registry) const;

 private:
  std::string source_;
  std::map<std::string, BasicCredentials> auths_;
  std::map<std::string, std::string> helpers_;  // registry -> helper name
  std::string store_;                           // credsStore, for every registry
};

// "https://index.docker.io/v1/" -> "docker.io", "http://reg:5000/x" -> "reg:5000".
std::string normalize_registry_key(std::string_view key);

}  // namespace boxcar::images
