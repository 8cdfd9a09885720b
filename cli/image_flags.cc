#include "cli/image_flags.h"

#include <cstdlib>

#include "base/size.h"

namespace boxcar::cli {

namespace {

// HOST or HOST:PORT, as a registry is named in an image reference.
bool valid_registry(const std::string& s) {
  if (s.empty() || s.find_first_of("/ \t@") != std::string::npos) return false;
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return true;
  std::string port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  long n = std::strtol(port.c_str(), nullptr, 10);
  return colon > 0 && n >= 1 && n <= 65535;
}

}  // namespace

std::vector<FlagSpec> with_image_flags(std::vector<FlagSpec> specs) {
  specs.push_back({"--image-cache", true, false, ""});
  specs.push_back({"--image-cache-size", true, false, ""});
  specs.push_back({"--insecure-registry", true, true, ""});
  specs.push_back({"--registry-auth", true, false, ""});
  return specs;
}

std::filesystem::path default_image_cache() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg == '/') return std::filesystem::path(xdg) / "boxcar" / "images";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : "/root") / ".cache" / "boxcar" / "images";
}

Result<agent::ImageFetcherOptions> read_image_options(const ParsedFlags& flags, const std::filesystem::path& cache) {
  agent::ImageFetcherOptions o;
  o.store.dir = flags.get("--image-cache").value_or(cache.string());
  if (o.store.dir.empty()) return Error{"--image-cache must name a directory", 0, ErrorCode::usage};
  if (auto s = flags.get("--image-cache-size")) {
    auto size = parse_size(*s);
    if (!size || *size < (64ull << 20)) {
      return Error{"--image-cache-size must be a size of at least 64MiB like 20GiB, not \"" + *s + "\"", 0,
                   ErrorCode::usage};
    }
    o.store.max_bytes = *size;
  }
  for (const std::string& r : flags.all("--insecure-registry")) {
    if (!valid_registry(r)) {
      return Error{"--insecure-registry takes HOST:PORT as an image reference names it (like 127.0.0.1:5000), not \"" +
                       r + "\"",
                   0, ErrorCode::usage};
    }
    o.registry.insecure.push_back(r);
  }
  if (auto f = flags.get("--registry-auth")) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(*f, ec)) {
      return Error{"--registry-auth: \"" + *f + "\" is not a file (give a Docker config.json with \"auths\")", 0,
                   ErrorCode::usage};
    }
    o.registry.auth_file = *f;
  }
  return o;
}

}  // namespace boxcar::cli
