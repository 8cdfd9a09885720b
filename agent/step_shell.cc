#include "agent/step_shell.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>

namespace boxcar::agent {
namespace fs = std::filesystem;
namespace {

// usrmerge needs one hop (bin -> usr/bin); a few more allow for odd images, never a loop.
constexpr int kMaxLinks = 8;

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part == "..") {
      if (out.empty()) return {};  // climbs out of the root: nothing there
      out.pop_back();
    } else if (!part.empty() && part != ".") {
      out.push_back(std::move(part));
    }
    start = end + 1;
  }
  return out;
}

bool opaque(const fs::path& dir) {
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    char v = 0;
    if (::lgetxattr(dir.c_str(), name, &v, 1) == 1 && v == 'y') return true;
  }
  return false;
}

bool is_file(const std::vector<fs::path>& layers, std::vector<std::string> parts, int links) {
  if (parts.empty()) return false;
  for (size_t l = layers.size(); l-- > 0;) {
    fs::path at = layers[l];
    bool hidden_below = false;
    for (size_t k = 0; k < parts.size(); ++k) {
      at /= parts[k];
      struct stat st {};
      if (::lstat(at.c_str(), &st) != 0) break;  // not in this layer: maybe in a lower one
      if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) return false;  // whiteout
      if (S_ISLNK(st.st_mode)) {
        if (links >= kMaxLinks) return false;
        std::string target(4096, '\0');
        ssize_t n = ::readlink(at.c_str(), target.data(), target.size());
        if (n <= 0) return false;
        target.resize(static_cast<size_t>(n));
        // Resolved lexically inside the root: an absolute target starts at the root's top.
        std::string rest;
        if (target[0] != '/') {
          for (size_t j = 0; j < k; ++j) rest += parts[j] + "/";
        }
        rest += target;
        for (size_t j = k + 1; j < parts.size(); ++j) rest += "/" + parts[j];
        return is_file(layers, split(rest), links + 1);
      }
      if (k + 1 == parts.size()) return S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
      if (!S_ISDIR(st.st_mode)) return false;  // a file where a directory is: hides lower ones
      hidden_below = hidden_below || opaque(at);
    }
    if (hidden_below) return false;
  }
  return false;
}

}  // namespace

std::vector<std::string> bash_shell(const std::string& bash) {
  return {bash, "--noprofile", "--norc", "-eo", "pipefail", "-c"};
}

std::vector<std::string> sh_shell() { return {"/bin/sh", "-e", "-c"}; }

std::string bash_in(const std::vector<fs::path>& layers) {
  for (const char* path : {"bin/bash", "usr/bin/bash"}) {
    if (is_file(layers, split(path), 0)) return "/" + std::string(path);
  }
  return "";
}

std::vector<std::string> step_shell(const std::vector<std::string>& explicit_shell,
                                    const std::vector<fs::path>& layers) {
  if (!explicit_shell.empty()) return explicit_shell;
  std::string bash = bash_in(layers.empty() ? std::vector<fs::path>{"/"} : layers);
  return bash.empty() ? sh_shell() : bash_shell(bash);
}

}  // namespace boxcar::agent
