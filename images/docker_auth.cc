#include "images/docker_auth.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>

#include "base/base64.h"

namespace boxcar::images {

namespace json = boost::json;

namespace {

constexpr size_t kMaxFileBytes = 1 << 20;

Error bad_file(const std::string& source, const std::string& why) {
  return Error("registry auth file " + source + ": " + why, 0, ErrorCode::usage, "registry_auth");
}

std::string field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

std::string normalize_registry_key(std::string_view key) {
  if (size_t scheme = key.find("://"); scheme != std::string_view::npos) key = key.substr(scheme + 3);
  key = key.substr(0, key.find('/'));
  std::string out(key);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (out == "index.docker.io" || out == "registry-1.docker.io" || out == "registry.hub.docker.com") {
    return "docker.io";
  }
  return out;
}

Result<DockerAuth> DockerAuth::load(const std::filesystem::path& file) {
  std::filesystem::path path = file;
  if (path.empty()) {
    if (const char* dir = std::getenv("DOCKER_CONFIG"); dir && *dir) {
      path = std::filesystem::path(dir) / "config.json";
    } else if (const char* home = std::getenv("HOME"); home && *home) {
      path = std::filesystem::path(home) / ".docker" / "config.json";
    }
    std::error_code ec;
    if (path.empty() || !std::filesystem::exists(path, ec)) return DockerAuth{};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return bad_file(path.string(), "cannot be read");
  std::string text;
  text.resize(kMaxFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes) return bad_file(path.string(), "is larger than 1 MiB");
  return parse(text, path.string());
}

Result<DockerAuth> DockerAuth::parse(std::string_view text, const std::string& source) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return bad_file(source, "is not a JSON object" + (ec ? ": " + ec.message() : ""));
  DockerAuth out;
  out.source_ = source;
  const auto& root = v.as_object();
  if (const json::value* auths = root.if_contains("auths"); auths && auths->is_object()) {
    for (const auto& [key, entry] : auths->as_object()) {
      if (!entry.is_object()) return bad_file(source, "auths entry \"" + std::string(key) + "\" is not an object");
      const auto& e = entry.as_object();
      BasicCredentials creds;
      std::string encoded = field(e, "auth");
      if (!encoded.empty()) {
        auto decoded = base64_decode(encoded);
        size_t colon = decoded ? decoded->find(':') : std::string::npos;
        if (colon == std::string::npos) {
          return bad_file(source, "auths entry \"" + std::string(key) + "\": \"auth\" is not base64 of user:password");
        }
        creds.username = decoded->substr(0, colon);
        creds.password = decoded->substr(colon + 1);
      } else {
        creds.username = field(e, "username");
        creds.password = field(e, "password");
      }
      if (creds.username.empty() && creds.password.empty()) continue;  // e.g. identitytoken only
      out.auths_[normalize_registry_key(key)] = std::move(creds);
    }
  }
  if (const json::value* helpers = root.if_contains("credHelpers"); helpers && helpers->is_object()) {
    for (const auto& [key, name] : helpers->as_object()) {
      out.helpers_[normalize_registry_key(key)] = name.is_string() ? std::string(name.as_string()) : "";
    }
  }
  out.store_ = field(root, "credsStore");
  return out;
}

RegistryCredentials DockerAuth::lookup(const std::string& registry) const {
  RegistryCredentials out;
  std::string key = normalize_registry_key(registry);
  if (auto it = auths_.find(key); it != auths_.end()) {
    out.basic = it->second;
    return out;
  }
  auto helper = helpers_.find(key);
  std::string name = helper != helpers_.end() ? helper->second : store_;
  if (!name.empty()) {
    out.unsupported = "the credentials for " + key + " in " + source_ + " are kept by the credential helper \"" +
                      name + "\" (" + (helper != helpers_.end() ? "credHelpers" : "credsStore") +
                      "), which boxcar does not run; give a file with an \"auths\" entry for " + key +
                      " instead (--registry-auth FILE)";
  }
  return out;
}

}  // namespace boxcar::images
