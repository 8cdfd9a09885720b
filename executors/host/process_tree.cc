#include "executors/host/process_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <optional>

#include "base/mountinfo.h"
#include "base/random_token.h"

namespace boxcar::executors::host {

namespace {

constexpr std::string_view kCookieName = "BOXCAR_SANDBOX_ID=";

std::optional<std::string> read_file(const std::string& path, size_t limit = 1 << 20) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::string text;
  char buf[16384];
  while (text.size() < limit) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

bool write_file(const std::string& path, std::string_view text) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return false;
  return ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

std::optional<long> parse_long(std::string_view s) {
  long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<pid_t> read_pids(const std::string& procs_file) {
  std::vector<pid_t> pids;
  auto text = read_file(procs_file);
  if (!text) return pids;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    if (nl == std::string::npos) nl = text->size();
    if (auto pid = parse_long(std::string_view(*text).substr(pos, nl - pos))) pids.push_back(*pid);
    pos = nl + 1;
  }
  return pids;
}

// Sub-directories first, so that rmdir meets empty directories.
void collect_dirs(const std::filesystem::path& dir, std::vector<std::filesystem::path>& out) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec)) collect_dirs(entry.path(), out);
  }
  out.push_back(dir);
}

// Fields of /proc/<pid>/stat after the command name, which may itself hold spaces and ')'.
std::vector<std::string_view> stat_fields(std::string_view stat) {
  std::vector<std::string_view> fields;
  size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return fields;
  std::string_view rest = stat.substr(close + 1);
  size_t pos = 0;
  while (pos < rest.size()) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    if (end > pos) fields.push_back(rest.substr(pos, end - pos));
    pos = end;
  }
  return fields;  // [0] = state (field 3), [2] = pgrp (field 5), [19] = starttime (field 22)
}

std::optional<std::string> start_time(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return std::nullopt;
  auto fields = stat_fields(*stat);
  if (fields.size() < 20) return std::nullopt;
  return std::string(fields[19]);
}

}  // namespace

// --- ProcessTree -------------------------------------------------------------------------

Result<std::unique_ptr<ProcessTree>> ProcessTree::child(std::string_view name) const {
  std::unique_ptr<ProcessTree> t(new ProcessTree);
  if (uses_cgroup()) {
    t->path_ = path_ / std::string(name);
    if (::mkdir(t->path_.c_str(), 0755) != 0 && errno != EEXIST) {
      return Error{"cannot create cgroup " + t->path_.string() + ": " + std::strerror(errno),
                   errno};
    }
    t->dir_.reset(::open(t->path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!t->dir_) {
      return Error{"cannot open cgroup " + t->path_.string() + ": " + std::strerror(errno), errno};
    }
  } else {
    t->cookie_ = cookie_match_ + std::string(name);
    t->cookie_match_ = t->cookie_;
    t->cookie_exact_ = true;
  }
  return t;
}

void ProcessTree::signal(int sig) const {
  if (uses_cgroup()) {
    std::vector<std::filesystem::path> dirs;
    collect_dirs(path_, dirs);
    for (const auto& dir : dirs) {
      for (pid_t pid : read_pids((dir / "cgroup.procs").string())) ::kill(pid, sig);
    }
    return;
  }
  if (pgid_ > 0) ::kill(-pgid_, sig);
  for (pid_t pid : cookie_members()) ::kill(pid, sig);
}

// A scan of /proc: members are the process group and whoever carries the cookie.
std::vector<pid_t> ProcessTree::cookie_members() const {
  std::vector<pid_t> members;
  DIR* proc = ::opendir("/proc");
  if (!proc) return members;
  const pid_t self = ::getpid();
  while (dirent* e = ::readdir(proc)) {
    auto pid = parse_long(e->d_name);
    if (!pid || *pid == self) continue;
    std::string base = "/proc/" + std::string(e->d_name);
    auto stat = read_file(base + "/stat");
    if (!stat) continue;
    auto fields = stat_fields(*stat);
    if (fields.size() < 3 || fields[0] == "Z" || fields[0] == "X") continue;
    bool member = pgid_ > 0 && parse_long(fields[2]) == pgid_;
    if (!member) {
      auto environ = read_file(base + "/environ");
      if (!environ) continue;
      for (size_t pos = 0; pos < environ->size() && !member;) {
        size_t end = environ->find('\0', pos);
        if (end == std::string::npos) end = environ->size();
        std::string_view entry = std::string_view(*environ).substr(pos, end - pos);
        member = cookie_exact_ ? entry == cookie_match_ : entry.starts_with(cookie_match_);
        pos = end + 1;
      }
    }
    if (member) members.push_back(static_cast<pid_t>(*pid));
  }
  ::closedir(proc);
  return members;
}

void ProcessTree::kill() const {
  if (uses_cgroup() && write_file((path_ / "cgroup.kill").string(), "1")) return;
  signal(SIGKILL);  // cookie mode, or a kernel before 5.14 without cgroup.kill
}

bool ProcessTree::empty() const {
  if (uses_cgroup()) {
    auto events = read_file((path_ / "cgroup.events").string());
    if (!events) return errno == ENOENT;
    return events->find("populated 0") != std::string::npos;
  }
  return cookie_members().empty();
}

bool ProcessTree::remove() const {
  if (!uses_cgroup()) return true;
  std::vector<std::filesystem::path> dirs;
  collect_dirs(path_, dirs);
  bool gone = true;
  for (const auto& dir : dirs) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) gone = false;
  }
  return gone;
}

}  // namespace boxcar::executors::host

namespace boxcar::executors::host {

// --- TreeRoot ----------------------------------------------------------------------------

std::filesystem::path TreeRoot::find_cgroup2(std::string_view mountinfo) {
  size_t pos = 0;
  while (pos < mountinfo.size()) {
    size_t nl = mountinfo.find('\n', pos);
    if (nl == std::string_view::npos) nl = mountinfo.size();
    std::string_view line = mountinfo.substr(pos, nl - pos);
    pos = nl + 1;
    // "36 35 98:0 /root /mnt rw,noatime master:1 - cgroup2 cgroup2 rw": optional fields end
    // at " - ", then the filesystem type.
    size_t sep = line.find(" - ");
    if (sep == std::string_view::npos) continue;
    std::string_view after = line.substr(sep + 3);
    if (!after.starts_with("cgroup2 ")) continue;
    std::vector<std::string_view> fields;
    size_t p = 0;
    while (p < sep && fields.size() < 5) {
      size_t end = line.find(' ', p);
      if (end == std::string_view::npos || end > sep) end = sep;
      fields.push_back(line.substr(p, end - p));
      p = end + 1;
    }
    if (fields.size() == 5 && fields[3] == "/") return unescape_mountinfo(fields[4]);
  }
  return {};
}

std::shared_ptr<TreeRoot> TreeRoot::open(bool try_cgroup) {
  std::shared_ptr<TreeRoot> root(new TreeRoot);
  auto cookie = random_token(8);
  if (!cookie) abort_without_randomness(cookie.error());  // TreeRoot::open has no error path
  root->cookie_prefix_ = std::string(kCookieName) + *cookie;
  if (!try_cgroup) return root;
  auto mountinfo = read_file("/proc/self/mountinfo");
  std::filesystem::path mount = mountinfo ? find_cgroup2(*mountinfo) : std::filesystem::path();
  auto self_start = start_time(::getpid());
  if (mount.empty() || !self_start) return root;
  std::filesystem::path base = mount / "boxcar.host";
  std::filesystem::path owner = base / (std::to_string(::getpid()) + "-" + *self_start);
  if (::mkdir(base.c_str(), 0755) != 0 && errno != EEXIST) return root;
  if (::mkdir(owner.c_str(), 0755) != 0 && errno != EEXIST) return root;
  if (::access((owner / "cgroup.procs").c_str(), W_OK) != 0) {
    ::rmdir(owner.c_str());
    return root;
  }
  root->owner_ = owner;
  return root;
}

TreeRoot::~TreeRoot() {
  if (!uses_cgroup()) return;
  // Sandboxes whose last processes were still exiting when they were destroyed may have left
  // empty directories; anything busy stays for the next agent's sweep.
  std::vector<std::filesystem::path> dirs;
  collect_dirs(owner_, dirs);
  for (const auto& dir : dirs) ::rmdir(dir.c_str());
}

Result<std::unique_ptr<ProcessTree>> TreeRoot::sandbox(std::string_view name) const {
  ProcessTree base;
  if (uses_cgroup()) {
    // Another TreeRoot of this process may have removed the shared owner directory.
    ::mkdir(owner_.c_str(), 0755);
    base.path_ = owner_;
    base.dir_.reset(::open(owner_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!base.dir_) {
      return Error{"cannot open cgroup " + owner_.string() + ": " + std::strerror(errno), errno};
    }
    return base.child(name);
  }
  base.cookie_match_ = cookie_prefix_ + "-";
  auto tree = base.child(name);
  if (tree) {
    (*tree)->cookie_match_ += "/";
    (*tree)->cookie_exact_ = false;
    (*tree)->cookie_.clear();
  }
  return tree;
}

std::vector<std::unique_ptr<ProcessTree>> TreeRoot::sweep_dead_owners() const {
  std::vector<std::unique_ptr<ProcessTree>> busy;
  if (!uses_cgroup()) return busy;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(owner_.parent_path(), ec)) {
    if (!entry.is_directory(ec) || entry.path() == owner_) continue;
    std::string name = entry.path().filename().string();
    size_t dash = name.find('-');
    if (dash == std::string::npos) continue;
    auto pid = parse_long(std::string_view(name).substr(0, dash));
    if (!pid || *pid <= 0) continue;
    auto start = start_time(static_cast<pid_t>(*pid));
    if (start && *start == name.substr(dash + 1)) continue;  // its agent is alive

    std::unique_ptr<ProcessTree> tree(new ProcessTree);
    tree->path_ = entry.path();
    tree->dir_.reset(::open(entry.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!tree->dir_) continue;
    tree->kill();
    if (!tree->remove()) busy.push_back(std::move(tree));
  }
  return busy;
}

}  // namespace boxcar::executors::host
