#include "cli/image_flags.h"

#include <cstdlib>

#include "base/size.h"

namespace boxcar::cli {

namespace {

constexpr uint64_t kMinCacheSize = 64ull << 20;

Error bad(const std::string& flag, const std::string& what, const std::string& value) {
  return Error{flag + " must be " + what + ", not \"" + value + "\"", 0, ErrorCode::usage};
}

// "host", "host:port", "[::1]:port": what a Reference's registry looks like.
bool host_port(const std::string& text) {
  if (text.empty() || text.find_first_of("/@ ") != std::string::npos) return false;
  std::string port;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close == 1) return false;
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return false;
      port = text.substr(close + 2);
      if (port.empty()) return false;
    }
  } else {
    size_t colon = text.find(':');
    if (colon == 0) return false;
    if (colon != std::string::npos) {
      port = text.substr(colon + 1);
      if (port.empty()) return false;
    }
  }
  if (port.empty()) return true;
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  long n = std::strtol(port.c_str(), nullptr, 10);
  return n >= 1 && n <= 65535;
}

}  // namespace

std::vector<FlagSpec> image_flag_specs() {
  return {{"--image-cache", true, false, ""},
          {"--image-cache-size", true, false, ""},
          {"--image-pull-timeout", true, false, ""},
          {"--insecure-registry", true, true, ""},
          {"--registry-auth", true, false, ""}};
}

std::vector<FlagSpec> with_image_flags(std::vector<FlagSpec> specs) {
  for (auto& s : image_flag_specs()) specs.push_back(std::move(s));
  return specs;
}

std::filesystem::path default_image_cache() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::filesystem::path(x) / "boxcar/images";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : "/root") / ".cache/boxcar/images";
}

Result<ImageSettings> read_image_flags(const ParsedFlags& flags, const std::filesystem::path& default_cache) {
  ImageSettings s;
  s.store.dir = default_cache;
  if (auto dir = flags.get("--image-cache")) {
    if (dir->empty()) return bad("--image-cache", "a directory", *dir);
    s.store.dir = *dir;
  }
  if (auto size = flags.get("--image-cache-size")) {
    auto n = parse_size(*size);
    if (!n || *n < kMinCacheSize) return bad("--image-cache-size", "a size of at least 64MiB (like 20GiB)", *size);
    s.store.max_bytes = *n;
  }
  if (auto t = flags.get("--image-pull-timeout")) {
    auto d = parse_duration(*t);
    if (!d || *d < Millis(1000)) return bad("--image-pull-timeout", "a duration of at least 1s (like 30m)", *t);
    s.pull_timeout = *d;
  }
  for (const auto& r : flags.all("--insecure-registry")) {
    if (r.find("://") != std::string::npos || !host_port(r)) {
      return bad("--insecure-registry", "a registry's HOST:PORT as an image reference names it (like 127.0.0.1:5000)", r);
    }
    s.registry.insecure.push_back(r);
  }
  if (auto file = flags.get("--registry-auth")) {
    std::error_code ec;
    if (file->empty() || !std::filesystem::is_regular_file(*file, ec)) {
      return bad("--registry-auth", "an existing Docker config.json file", *file);
    }
    s.registry.auth_file = *file;
  }
  return s;
}

}  // namespace boxcar::cli
