#include "base/link_target.h"

#include <vector>

namespace boxcar {
namespace {

std::vector<std::string> split(std::string_view p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.emplace_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += (i ? "/" : "") + parts[i];
  return out;
}

// Applies `segments` to the directory stack `dir`; false when a ".." climbs above the root.
bool fold(std::vector<std::string>& dir, const std::vector<std::string>& segments) {
  for (const auto& s : segments) {
    if (s == ".") continue;
    if (s == "..") {
      if (dir.empty()) return false;
      dir.pop_back();
    } else {
      dir.push_back(s);
    }
  }
  return true;
}

// The same limit as the kernel's (MAXSYMLINKS).
constexpr int kMaxLinks = 40;

}  // namespace

std::optional<std::string> lexical_link_target(std::string_view link, std::string_view target) {
  if (target.empty() || target.front() == '/' || target.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  std::vector<std::string> dir = split(link);
  if (!dir.empty()) dir.pop_back();  // the link's own directory
  if (!fold(dir, split(target)) || dir.empty()) return std::nullopt;
  return join(dir, dir.size());
}

LinkResolution resolve_in_set(
    std::string_view path, const std::function<std::optional<std::string>(const std::string&)>& link_of) {
  // Components still to walk, and the directory reached so far (always link-free).
  std::vector<std::string> todo = split(path);
  std::vector<std::string> done;
  int links = 0;
  size_t next = 0;
  while (next < todo.size()) {
    const std::string seg = todo[next++];
    if (seg == ".") continue;
    if (seg == "..") {
      if (done.empty()) return {"", "leads out of the artifacts (\"..\" above the workspace)"};
      done.pop_back();
      continue;
    }
    done.push_back(seg);
    std::string here = join(done, done.size());
    auto target = link_of(here);
    if (!target) continue;
    if (++links > kMaxLinks) return {"", "is a chain of more than 40 links (a loop?)"};
    if (target->empty() || target->front() == '/') {
      return {"", "goes through \"" + here + "\", which points to an absolute path"};
    }
    // Replace the link by its target text, read from the link's directory.
    done.pop_back();
    std::vector<std::string> rest = split(*target);
    rest.insert(rest.end(), todo.begin() + static_cast<std::ptrdiff_t>(next), todo.end());
    todo = std::move(rest);
    next = 0;
  }
  if (done.empty()) return {"", "names the workspace itself"};
  return {join(done, done.size()), ""};
}

}  // namespace boxcar
