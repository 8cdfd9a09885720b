#include "executors/oci/runtime.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace boxcar::executors::oci {

namespace {

bool executable_file(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

Result<std::string> find_runtime(const std::string& requested) {
  if (requested.empty()) return Error{"empty: name runc, crun or runsc, or give a path", EINVAL, ErrorCode::usage, "oci_runtime"};
  if (requested.find('/') != std::string::npos) {
    if (!executable_file(requested)) {
      return Error{requested + " is not an executable file", ENOENT, ErrorCode::usage, "oci_runtime"};
    }
    char* real = ::realpath(requested.c_str(), nullptr);
    std::string path = real ? real : requested;
    std::free(real);
    return path;
  }
  const char* env = std::getenv("PATH");
  std::string path = env && *env ? env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (size_t start = 0;;) {
    size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!dir.empty() && executable_file(dir + "/" + requested)) return dir + "/" + requested;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  // Debian's packages are in sbin, which a user's PATH may lack.
  for (const char* dir : {"/usr/sbin", "/usr/local/sbin", "/sbin"}) {
    if (executable_file(std::string(dir) + "/" + requested)) return std::string(dir) + "/" + requested;
  }
  std::string how = requested == "runsc" ? "install gVisor's runsc (https://gvisor.dev/docs/user_guide/install/)"
                                          : "install it (Debian: apt install " + requested + ")";
  return Error{"OCI runtime \"" + requested + "\" not found in PATH or /usr/sbin; " + how + " or give its path",
               ENOENT, ErrorCode::unavailable, "oci_runtime"};
}

}  // namespace boxcar::executors::oci
