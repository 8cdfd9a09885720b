#include "agent/cache_key_hash.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "agent/cache_tree.h"
#include "base/beneath.h"
#include "base/glob.h"
#include "base/sha256.h"
#include "base/unique_fd.h"

namespace boxcar::agent {
namespace {

// The directories before a glob's first wildcard segment: "src/**/*.lock" -> "src".
std::string literal_dir(const std::string& glob) {
  std::string dir;
  size_t start = 0;
  while (true) {
    size_t slash = glob.find('/', start);
    if (slash == std::string::npos) return dir;  // the last segment is the name itself
    std::string segment = glob.substr(start, slash - start);
    if (glob_has_wildcards(segment)) return dir;
    dir += (dir.empty() ? "" : "/") + segment;
    start = slash + 1;
  }
}

std::string joined(const std::vector<std::string>& globs) {
  std::string out;
  for (const std::string& g : globs) out += (out.empty() ? "" : ",") + g;
  return out;
}

}  // namespace

Result<std::string> hash_cache_globs(int workspace, const std::vector<std::string>& globs,
                                     const CacheHashLimits& limits) {
  std::set<std::string> roots;
  for (const std::string& g : globs) roots.insert(literal_dir(g));
  // A root below another is walked with it.
  std::set<std::string> walked;
  for (const std::string& r : roots) {
    bool covered = std::any_of(walked.begin(), walked.end(), [&](const std::string& w) {
      return w.empty() || r == w || r.starts_with(w + "/");
    });
    if (!covered) walked.insert(r);
  }
  std::set<std::string> matched;  // sorted: path order
  size_t entries = 0;
  const std::string what = "${hash:" + joined(globs) + "}";
  for (const std::string& root : walked) {
    Status s = walk_cache_tree(workspace, root, [&](const std::string& path, int, const char*,
                                                    const struct stat& st, bool&) -> Status {
      if (++entries > limits.entries) {
        return Error{what + " looked at more than " + std::to_string(limits.entries) +
                         " files and directories: narrow its globs",
                     0, ErrorCode::limit_exceeded};
      }
      if (!S_ISREG(st.st_mode)) return Status{};
      for (const std::string& g : globs) {
        if (glob_match(g, path)) {
          matched.insert(path);
          break;
        }
      }
      if (matched.size() > limits.files) {
        return Error{what + " matches more than " + std::to_string(limits.files) +
                         " files: narrow its globs",
                     0, ErrorCode::limit_exceeded};
      }
      return Status{};
    });
    if (!s) return Error{what + ": " + s.error().message, s.error().err, s.error().code};
  }
  Sha256 hasher;
  uint64_t bytes = 0;
  std::vector<char> buffer(1 << 16);
  for (const std::string& path : matched) {
    unique_fd fd = open_beneath(workspace, path, O_RDONLY);
    if (!fd) return Error{what + ": cannot open \"" + path + "\": " + std::strerror(errno), errno};
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;  // replaced meanwhile
    hasher.update(path);
    hasher.update(std::string_view("\0", 1));
    hasher.update(std::to_string(st.st_size));
    hasher.update(std::string_view("\0", 1));
    while (true) {
      ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error{what + ": cannot read \"" + path + "\"", errno};
      if (n == 0) break;
      bytes += static_cast<uint64_t>(n);
      if (bytes > limits.bytes) {
        return Error{what + " matches more than " + std::to_string(limits.bytes >> 20) +
                         " MiB of files: narrow its globs",
                     0, ErrorCode::limit_exceeded};
      }
      hasher.update(buffer.data(), static_cast<size_t>(n));
    }
  }
  return hasher.hex();
}

}  // namespace boxcar::agent
