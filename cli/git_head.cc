#include "cli/git_head.h"

#include <fstream>

namespace boxcar::cli {
namespace {

std::string first_line(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

std::string resolve_ref(const std::filesystem::path& git, const std::string& ref) {
  std::string loose = first_line(git / ref);
  if (!loose.empty()) return loose;
  std::ifstream packed(git / "packed-refs");
  std::string line;
  while (std::getline(packed, line)) {
    if (line.size() > 41 && line[40] == ' ' && line.compare(41, std::string::npos, ref) == 0) {
      return line.substr(0, 40);
    }
  }
  return {};
}

}  // namespace

GitHead read_git_head(const std::filesystem::path& dir) {
  GitHead head;
  std::filesystem::path git = dir / ".git";
  std::string content = first_line(git / "HEAD");
  const std::string prefix = "ref: ";
  if (content.rfind(prefix, 0) == 0) {
    std::string ref = content.substr(prefix.size());
    if (ref.rfind("refs/heads/", 0) == 0) head.branch = ref.substr(11);
    head.commit = resolve_ref(git, ref);
  } else if (content.size() >= 40) {
    head.commit = content.substr(0, 40);
  }
  return head;
}

}  // namespace boxcar::cli
