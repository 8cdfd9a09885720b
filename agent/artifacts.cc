#include "agent/artifacts.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "base/beneath.h"
#include "base/glob.h"
#include "base/link_target.h"
#include "base/size.h"
#include "base/unique_fd.h"

namespace boxcar::agent {
namespace {

// Creates every directory of `rel` (a directory path) beneath `root`.
bool make_dirs_beneath(int root, const std::string& rel) {
  size_t pos = 0;
  while (pos <= rel.size()) {
    size_t slash = rel.find('/', pos);
    if (slash == std::string::npos) slash = rel.size();
    std::string prefix = rel.substr(0, slash);
    if (!prefix.empty()) {
      unique_fd parent = open_beneath(root, prefix.substr(0, prefix.rfind('/') == std::string::npos ? 0 : prefix.rfind('/')),
                                      O_DIRECTORY | O_PATH);
      if (!parent) return false;
      std::string leaf = prefix.substr(prefix.rfind('/') == std::string::npos ? 0 : prefix.rfind('/') + 1);
      if (mkdirat(parent.get(), leaf.c_str(), 0755) != 0 && errno != EEXIST) return false;
    }
    pos = slash + 1;
  }
  return true;
}

std::string parent_of(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

std::string leaf_of(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

// The literal directory a glob starts in: the segments before the first one with a wildcard.
std::string literal_prefix(const std::string& glob) {
  std::string prefix;
  size_t pos = 0;
  while (pos < glob.size()) {
    size_t slash = glob.find('/', pos);
    if (slash == std::string::npos) break;  // the last segment is the name itself
    std::string seg = glob.substr(pos, slash - pos);
    if (glob_has_wildcards(seg)) break;
    prefix += (prefix.empty() ? "" : "/") + seg;
    pos = slash + 1;
  }
  return prefix;
}

class Collector {
 public:
  Collector(int src_root, int dest_root, const ArtifactLimits& limits, uint64_t& total)
      : src_(src_root), dest_(dest_root), limits_(limits), total_(total) {}

  CollectResult result;

  // Visits the tree below directory `rel`, adding entries that match `glob` (or everything,
  // when `all` is set: the contents of a directory that matched).
  void walk(const std::string& rel, const std::string& glob, bool all) {
    unique_fd dir = open_beneath(src_, rel, O_RDONLY | O_DIRECTORY);
    if (!dir) return;
    DIR* d = fdopendir(dir.release());
    if (!d) return;
    std::vector<std::pair<std::string, unsigned char>> entries;
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      if (rel.empty() && (name == ".boxcar" || name == ".git")) continue;
      entries.emplace_back(name, e->d_type);
    }
    closedir(d);
    for (const auto& [name, type] : entries) {
      std::string path = rel.empty() ? name : rel + "/" + name;
      bool match = all || glob_match(glob, path);
      if (match) {
        ++matched_;
        add(path, all);
      } else if (type == DT_DIR) {
        walk(path, glob, false);
      }
    }
  }

  // Adds one path (file, link, or directory with everything below it).
  void add(const std::string& rel, bool inside_matched_dir) {
    if (!seen_.insert(rel).second) return;
    unique_fd parent = open_beneath(src_, parent_of(rel), O_DIRECTORY | O_PATH);
    if (!parent) return warn(rel, "cannot open its directory");
    struct stat st {};
    if (fstatat(parent.get(), leaf_of(rel).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (!inside_matched_dir) warn(rel, std::strerror(errno));
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!make_dirs_beneath(dest_, rel)) return warn(rel, "cannot create its directory");
      kept_.insert(rel);
      walk(rel, "", true);
    } else if (S_ISLNK(st.st_mode)) {
      read_link(parent.get(), rel);
    } else if (S_ISREG(st.st_mode)) {
      copy_file(rel);
    } else {
      warn(rel, "not a regular file, directory or symlink (FIFO, socket or device): skipped");
    }
  }

  size_t matched() const { return matched_; }
  void reset_matched() { matched_ = 0; }

  // After every glob: keeps each link whose target, expanding the set's own links on the way,
  // is a file or directory this collection kept; refuses the others with a line naming them.
  void place_links() {
    auto link_of = [this](const std::string& p) -> std::optional<std::string> {
      auto it = links_.find(p);
      if (it == links_.end()) return std::nullopt;
      return it->second;
    };
    for (const auto& [rel, target] : links_) {
      LinkResolution r = resolve_in_set(rel, link_of);
      std::string why = r.error;
      if (target.empty() || target.front() == '/') {
        why = "points to an absolute path";
      } else if (r.ok() && !kept_.count(r.path)) {
        why = "points to \"" + r.path + "\", which this step did not collect (missing, skipped or outside its globs)";
      }
      if (!why.empty()) {
        result.refused.push_back("link \"" + rel + "\" -> \"" + target + "\" not kept: it " + why +
                                 "; only links to files the step also collects are kept");
        continue;
      }
      copy_link(rel, target);
    }
  }

 private:
  void warn(const std::string& rel, const std::string& why) {
    result.warnings.push_back("\"" + rel + "\": " + why);
  }

  // Links are placed once the whole set is known (place_links): a link may come before its target.
  void read_link(int parent, const std::string& rel) {
    char target[4096];
    ssize_t n = readlinkat(parent, leaf_of(rel).c_str(), target, sizeof target - 1);
    if (n < 0) return warn(rel, std::strerror(errno));
    links_[rel] = std::string(target, static_cast<size_t>(n));
  }

  void copy_link(const std::string& rel, const std::string& target) {
    if (!make_dirs_beneath(dest_, parent_of(rel))) return warn(rel, "cannot create its directory");
    unique_fd dparent = open_beneath(dest_, parent_of(rel), O_DIRECTORY | O_PATH);
    if (!dparent) return warn(rel, "cannot open destination");
    unlinkat(dparent.get(), leaf_of(rel).c_str(), 0);
    if (symlinkat(target.c_str(), dparent.get(), leaf_of(rel).c_str()) != 0) {
      return warn(rel, std::strerror(errno));
    }
    result.files.push_back({rel, 0, true, target});
  }

  void copy_file(const std::string& rel) {
    // The entry may have been swapped (RENAME_EXCHANGE) since add() saw a regular file: with
    // O_NONBLOCK a FIFO's open returns at once instead of waiting for a writer forever, and
    // the fstat below refuses it. (Regular files ignore O_NONBLOCK.)
    unique_fd in = open_beneath(src_, rel, O_RDONLY | O_NONBLOCK);
    if (!in) return warn(rel, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) return warn(rel, "not a regular file");
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size > limits_.per_file) {
      return warn(rel, "is " + format_size(size) + ", over the per-file limit of " +
                           format_size(limits_.per_file) + ": skipped");
    }
    if (total_ + size > limits_.total) {
      return warn(rel, "would take the run's artifacts over " + format_size(limits_.total) +
                           ": skipped");
    }
    if (!make_dirs_beneath(dest_, parent_of(rel))) return warn(rel, "cannot create its directory");
    unique_fd dparent = open_beneath(dest_, parent_of(rel), O_DIRECTORY | O_PATH);
    if (!dparent) return warn(rel, "cannot open destination");
    unlinkat(dparent.get(), leaf_of(rel).c_str(), 0);
    unique_fd out(openat(dparent.get(), leaf_of(rel).c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0777));
    if (!out) return warn(rel, std::string("cannot create copy: ") + std::strerror(errno));
    uint64_t copied = 0;
    // Copy at most the size seen at open: a file still growing cannot pass the limit.
    while (copied < size) {
      ssize_t n = copy_file_range(in.get(), nullptr, out.get(), nullptr, size - copied, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS)) {
        char buf[1 << 16];
        n = read(in.get(), buf, std::min<uint64_t>(sizeof buf, size - copied));
        if (n > 0 && write(out.get(), buf, static_cast<size_t>(n)) != n) n = -1;
      }
      if (n < 0) return warn(rel, std::string("copy failed: ") + std::strerror(errno));
      if (n == 0) break;
      copied += static_cast<uint64_t>(n);
    }
    total_ += copied;
    result.files.push_back({rel, copied, false, {}});
    // The file and the directories above it are what a kept link may point to.
    for (std::string p = rel; !p.empty(); p = parent_of(p)) kept_.insert(p);
  }

  int src_;
  int dest_;
  ArtifactLimits limits_;
  uint64_t& total_;
  size_t matched_ = 0;
  std::set<std::string> seen_;
  std::set<std::string> kept_;                 // files and directories collected
  std::map<std::string, std::string> links_;   // link -> its target text, placed at the end
};

}  // namespace

Result<CollectResult> collect_artifacts(const std::filesystem::path& workspace,
                                        const std::vector<std::string>& globs,
                                        const std::filesystem::path& dest,
                                        const ArtifactLimits& limits, uint64_t& total_used) {
  std::error_code ec;
  std::filesystem::create_directories(dest, ec);
  unique_fd dst(open(dest.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dst) return Error{"cannot open artifact directory " + dest.string() + ": " + std::strerror(errno), errno};
  return collect_artifacts(workspace, globs, dst.get(), limits, total_used);
}

Result<CollectResult> collect_artifacts(const std::filesystem::path& workspace,
                                        const std::vector<std::string>& globs, int dest_dir,
                                        const ArtifactLimits& limits, uint64_t& total_used) {
  unique_fd src(open(workspace.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!src) return Error{"cannot open workspace " + workspace.string() + ": " + std::strerror(errno), errno};
  Collector c(src.get(), dest_dir, limits, total_used);
  for (const auto& glob : globs) {
    c.reset_matched();
    if (!glob_has_wildcards(glob)) {
      // A literal path: look it up directly (a literal "." or ".." component never resolves
      // out: openat2 refuses it).
      struct stat st {};
      unique_fd parent = open_beneath(src.get(), parent_of(glob), O_DIRECTORY | O_PATH);
      if (parent && fstatat(parent.get(), leaf_of(glob).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        c.add(glob, false);
        continue;
      }
    } else {
      c.walk(literal_prefix(glob), glob, false);
    }
    if (c.matched() == 0) c.result.warnings.push_back("no file matches \"" + glob + "\"");
  }
  c.place_links();
  return std::move(c.result);
}

}  // namespace boxcar::agent
