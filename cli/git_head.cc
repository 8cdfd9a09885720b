#include "cli/git_head.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "base/beneath.h"

namespace boxcar::cli {
namespace {

// Steps of earlier runs can write .git: every file is read beneath the workspace (no symlink,
// no `..`), at most `limit` bytes, and only well-formed values are believed, so a planted
// `ref: ../../../etc/shadow` or a link to a host file never reaches BOXCAR_COMMIT.
std::string read_beneath(int root, const std::string& rel, size_t limit) {
  unique_fd fd = open_beneath(root, rel, O_RDONLY | O_NONBLOCK);
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
  std::string text(limit, '\0');
  ssize_t n = ::read(fd.get(), text.data(), limit);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return text;
}

std::string first_line(int root, const std::string& rel) {
  std::string line = read_beneath(root, rel, 4096);
  line = line.substr(0, line.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

bool is_sha(const std::string& s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// refs/heads/... or refs/tags/... without any `..` or empty component.
bool is_ref_name(const std::string& ref) {
  if (!ref.starts_with("refs/heads/") && !ref.starts_with("refs/tags/")) return false;
  return ref.find("..") == std::string::npos && ref.find("//") == std::string::npos && ref.back() != '/';
}

std::string resolve_ref(int git, const std::string& ref) {
  std::string loose = first_line(git, ref);
  if (is_sha(loose)) return loose;
  std::string packed = read_beneath(git, "packed-refs", 16u << 20);
  size_t pos = 0;
  while (pos < packed.size()) {
    size_t end = packed.find('\n', pos);
    std::string line = packed.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? packed.size() : end + 1;
    if (line.size() > 41 && line[40] == ' ' && line.compare(41, std::string::npos, ref) == 0) {
      std::string sha = line.substr(0, 40);
      return is_sha(sha) ? sha : std::string();
    }
  }
  return {};
}

// The url of [remote "origin"] in .git/config (what a local run's caches are kept by), printable
// ASCII only.
std::string read_origin(int git) {
  std::string config = read_beneath(git, "config", 1u << 20);
  bool in_origin = false;
  size_t pos = 0;
  while (pos < config.size()) {
    size_t end = config.find('\n', pos);
    std::string line = config.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? config.size() : end + 1;
    line.erase(0, line.find_first_not_of(" \t"));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (line.starts_with("[")) {
      in_origin = line == "[remote \"origin\"]";
      continue;
    }
    if (!in_origin || !line.starts_with("url")) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos || line.find_first_not_of(" \t", 3) != eq) continue;
    std::string url = line.substr(line.find_first_not_of(" \t", eq + 1) == std::string::npos
                                      ? line.size()
                                      : line.find_first_not_of(" \t", eq + 1));
    bool printable = !url.empty() && url.size() <= 2048 &&
                     std::all_of(url.begin(), url.end(), [](char c) { return c > ' ' && c < 127; });
    return printable ? url : std::string();
  }
  return {};
}

}  // namespace

GitHead read_git_head(const std::filesystem::path& dir) {
  GitHead head;
  unique_fd root(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return head;
  unique_fd git = open_beneath(root.get(), ".git", O_PATH | O_DIRECTORY);
  if (!git) return head;
  std::string content = first_line(git.get(), "HEAD");
  const std::string prefix = "ref: ";
  if (content.rfind(prefix, 0) == 0) {
    std::string ref = content.substr(prefix.size());
    if (!is_ref_name(ref)) return head;
    if (ref.rfind("refs/heads/", 0) == 0) head.branch = ref.substr(11);
    head.commit = resolve_ref(git.get(), ref);
  } else if (is_sha(content.substr(0, 40))) {
    head.commit = content.substr(0, 40);
  }
  head.origin = read_origin(git.get());
  return head;
}

}  // namespace boxcar::cli
