#include "cli/exit_codes.h"

#include <cstdio>
#include <string_view>

namespace boxcar::cli {

int exit_code(ErrorCode code) {
  switch (code) {
    // Something the user gave must change: the same command fails the same way again.
    case ErrorCode::usage:
    case ErrorCode::invalid_input:
    case ErrorCode::not_found:
    case ErrorCode::conflict:
    case ErrorCode::limit_exceeded:
      return kExitUsage;
    // The machine or a server let us down: the same command may work later or elsewhere.
    case ErrorCode::unavailable:
    case ErrorCode::internal:
      return kExitInfra;
  }
  return kExitInfra;
}

namespace {

// Library errors name settings by their config field; users know them by their flags.
struct SubjectFlag {
  std::string_view subject;
  std::string_view flag;
};
constexpr SubjectFlag kSubjectFlags[] = {
    {"max_memory", "--max-memory"},
    {"max_pids", "--max-pids"},
    {"max_cpus", "--max-cpus"},
    {"max_tmp", "--max-tmp"},
    {"tls_cert", "--tls-cert"},
    {"tls_key", "--tls-key"},
    {"preview_listen", "--preview-listen"},
    {"preview_domain", "--preview-domain"},
    {"db", "--db"},
    {"registry_auth", "--registry-auth"},
    {"insecure_registry", "--insecure-registry"},
    {"image_cache", "--image-cache"},
    {"image_cache_size", "--image-cache-size"},
    {"image_pull_timeout", "--image-pull-timeout"},
    {"oci_runtime", "--oci-runtime"},
};

}  // namespace

std::string flag_of(const std::string& subject) {
  for (const auto& [s, flag] : kSubjectFlags) {
    if (s == subject) return std::string(flag);
  }
  return "";
}

std::string describe(const Error& error) {
  std::string flag = flag_of(error.subject);
  if (flag.empty()) return error.message;
  if (error.code == ErrorCode::limit_exceeded) return error.message + " (raise it with " + flag + ")";
  return flag + ": " + error.message;
}

int usage_error(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "boxcar %s: %s\n", command.c_str(), message.c_str());
  return kExitUsage;
}

int report(const std::string& command, const Error& error) {
  std::fprintf(stderr, "boxcar %s: %s\n", command.c_str(), describe(error).c_str());
  return exit_code(error);
}

}  // namespace boxcar::cli
