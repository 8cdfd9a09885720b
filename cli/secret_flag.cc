#include "cli/secret_flag.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace boxcar::cli {

namespace {

constexpr size_t kMaxSecretBytes = 64 << 10;

}  // namespace

std::vector<FlagSpec> secret_flag_specs(const SecretFlag& secret) {
  return {{secret.flag, true, false, ""}, {secret.flag + "-file", true, false, ""}};
}

Result<std::string> read_secret_file(const std::filesystem::path& file, const std::string& flag) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error{flag + ": cannot read " + file.string() + ": " + std::strerror(errno)};
  std::string text(kMaxSecretBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxSecretBytes) {
    return Error{flag + ": " + file.string() + " is larger than 64 KiB; it should hold one secret"};
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return Error{flag + ": " + file.string() + " is empty"};
  return text;
}

Result<std::optional<std::string>> read_secret(const ParsedFlags& flags, const SecretFlag& secret,
                                               const std::string& command) {
  std::string file_flag = secret.flag + "-file";
  auto value = flags.get(secret.flag);
  auto file = flags.get(file_flag);
  if (value && file) return Error{"give " + secret.flag + " or " + file_flag + ", not both"};
  if (value) {
    if (value->empty()) return Error{secret.flag + " must not be empty"};
    if (!secret.is_secret || secret.is_secret(*value)) {
      std::fprintf(stderr,
                   "boxcar %s: warning: %s on the command line is visible to every local user in "
                   "ps; use %s or %s\n",
                   command.c_str(), secret.flag.c_str(), secret.env.c_str(), file_flag.c_str());
    }
    return std::optional<std::string>(*value);
  }
  if (file) {
    auto text = read_secret_file(*file, file_flag);
    if (!text) return text.error();
    return std::optional<std::string>(std::move(*text));
  }
  if (const char* env = std::getenv(secret.env.c_str()); env && *env) {
    return std::optional<std::string>(env);
  }
  return std::optional<std::string>();
}

}  // namespace boxcar::cli
