#include "executors/native/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "executors/native/net_cls.h"

namespace boxcar::executors::native {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int write_file(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int rc = 0;
  if (::write(fd, value.data(), value.size()) != static_cast<ssize_t>(value.size())) rc = errno;
  ::close(fd);
  return rc;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// "starttime" of a process (field 22 of /proc/<pid>/stat), "" when it does not exist.
std::string start_time(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && (in >> field); ++i) {
  }
  return field;
}

std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_type == DT_DIR && e->d_name[0] != '.') out.emplace_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

// Kills everything in `dir` and below, then removes the directories bottom-up.
void kill_and_remove(const std::string& dir) {
  for (const auto& sub : subdirs(dir)) kill_and_remove(dir + "/" + sub);
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::istringstream procs(read_file(dir + "/cgroup.procs"));
    pid_t pid;
    while (procs >> pid) ::kill(pid, SIGKILL);
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    ::usleep(10000);  // only at start-up, for leftovers of a dead agent
  }
}

}  // namespace

CgroupRoot CgroupRoot::discover(const std::string& parent) {
  CgroupRoot root;
  root.instance_ = std::to_string(::getpid()) + "-" + start_time(::getpid());
  // Before the mounts are read: when nothing shows net_cls, it is mounted here.
  std::string net_cls_dir;
  if (auto net_cls = net_cls_mount()) net_cls_dir = *net_cls;
  else root.net_cls_error_ = net_cls.error().message;

  // Mount points: v1 per controller, and the v2 tree.
  std::string v2_mount;
  std::vector<std::pair<std::string, std::string>> v1;  // controller, mount
  std::istringstream mounts(read_file("/proc/self/mounts"));
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream f(line);
    std::string dev, dir, type, opts;
    f >> dev >> dir >> type >> opts;
    if (type == "cgroup2") {
      v2_mount = dir;
    } else if (type == "cgroup") {
      for (const auto& o : split(opts, ',')) {
        if (o == "memory" || o == "pids" || o == "cpu") v1.emplace_back(o, dir);
      }
    }
  }
  if (!net_cls_dir.empty()) v1.emplace_back("net_cls", net_cls_dir);
  std::string v2_controllers;
  if (!v2_mount.empty()) v2_controllers = " " + read_file(v2_mount + "/cgroup.controllers");

  // The agent's own cgroup in each hierarchy.
  std::string v2_own;
  std::vector<std::pair<std::string, std::string>> v1_own;
  std::istringstream self(read_file("/proc/self/cgroup"));
  for (std::string line; std::getline(self, line);) {
    auto parts = split(line, ':');
    if (parts.size() < 3) continue;
    if (parts[1].empty()) v2_own = parts[2];
    for (const auto& c : split(parts[1], ',')) v1_own.emplace_back(c, parts[2]);
  }

  for (const char* name : {"memory", "pids", "cpu", "net_cls"}) {
    Controller c{name, {}, false};
    std::string parent_dir;
    bool in_v2 = false;
    std::istringstream listed(v2_controllers);
    for (std::string word; listed >> word;) in_v2 |= word == name;
    if (in_v2) {
      // Not exercised on hybrid hosts (their v2 tree has no controllers), so kept simple:
      // cgroup v2 lets a cgroup hand controllers to children only while it has no
      // processes of its own, so the agent first moves itself into a leaf.
      std::string own_dir = v2_mount + (v2_own == "/" ? "" : v2_own);
      std::string enable = std::string("+") + name;
      if (own_dir != v2_mount && write_file(own_dir + "/cgroup.subtree_control", enable) == EBUSY) {
        ::mkdir((own_dir + "/agent").c_str(), 0755);
        write_file(own_dir + "/agent/cgroup.procs", std::to_string(::getpid()));
        write_file(own_dir + "/cgroup.subtree_control", enable);
      }
      parent_dir = own_dir + "/" + parent;
      c.v2 = true;
    } else {
      for (const auto& [ctl, mnt] : v1) {
        if (ctl != name) continue;
        for (const auto& [own_ctl, own] : v1_own) {
          if (own_ctl == name) parent_dir = mnt + (own == "/" ? "" : own) + "/" + parent;
        }
      }
    }
    if (!parent_dir.empty()) {
      ::mkdir(parent_dir.c_str(), 0755);
      if (c.v2) write_file(parent_dir + "/cgroup.subtree_control", std::string("+") + name);
      c.dir = parent_dir + "/" + root.instance_;
      if (::mkdir(c.dir.c_str(), 0755) != 0 && errno != EEXIST) {
        if (c.name == "net_cls") root.net_cls_error_ = "net_cls: mkdir " + c.dir + ": " + std::strerror(errno);
        c.dir.clear();
      }
      if (c.v2 && !c.dir.empty()) write_file(c.dir + "/cgroup.subtree_control", std::string("+") + name);
      bool seen = false;
      for (const auto& p : root.parents_) seen |= p == parent_dir;
      if (!seen) root.parents_.push_back(parent_dir);
    }
    root.controllers_.push_back(std::move(c));
  }
  // Commands' own trees: below a v2 controller's directory where there is one, else in a
  // v2 directory of our own with no controllers (hybrid hosts), used for tracking only.
  for (const auto& c : root.controllers_) {
    if (c.v2 && !c.dir.empty() && root.tree_root_.empty()) root.tree_root_ = c.dir;
  }
  if (root.tree_root_.empty() && !v2_mount.empty()) {
    std::string parent_dir = v2_mount + (v2_own == "/" ? "" : v2_own) + "/" + parent;
    std::string dir = parent_dir + "/" + root.instance_;
    if ((::mkdir(parent_dir.c_str(), 0755) == 0 || errno == EEXIST) && (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST)) {
      root.tree_root_ = dir;
      bool seen = false;
      for (const auto& p : root.parents_) seen |= p == parent_dir;
      if (!seen) root.parents_.push_back(parent_dir);
    } else {
      root.tree_error_ = "cgroup v2 is not writable here: mkdir " + dir + ": " + std::strerror(errno);
    }
  }
  if (root.tree_error_.empty()) root.tree_error_ = probe_exec_trees(root.tree_root_);
  return root;
}

bool CgroupRoot::instance_alive(const std::string& name) {
  auto dash = name.find('-');
  if (dash == std::string::npos) return false;
  pid_t pid = static_cast<pid_t>(std::atoi(name.substr(0, dash).c_str()));
  return pid > 0 && start_time(pid) == name.substr(dash + 1);
}

void CgroupRoot::remove_stale() const {
  for (const auto& parent : parents_) {
    for (const auto& inst : subdirs(parent)) {
      if (inst == instance_ || instance_alive(inst)) continue;
      kill_and_remove(parent + "/" + inst);
    }
  }
}

void CgroupRoot::remove_own() const {
  for (const auto& c : controllers_) {
    if (!c.dir.empty()) ::rmdir(c.dir.c_str());
  }
  if (!tree_root_.empty()) ::rmdir(tree_root_.c_str());
}

Result<StepCgroup> StepCgroup::create(const CgroupRoot& root, const std::string& name,
                                      const SandboxSpec& spec, std::optional<uid_t> tree_owner) {
  auto made = create_limited(root, name, spec);
  if (!made || !tree_owner || root.tree_root().empty() || !root.tree_error().empty()) return made;
  StepCgroup& cg = *made;
  const uid_t owner = *tree_owner;
  cg.tree_dir_ = root.tree_root() + "/" + name;
  cg.tree_owner_ = owner;
  bool exists = false;
  for (const auto& d : cg.dirs_) exists |= d == cg.tree_dir_;
  if (!exists) {
    if (::mkdir(cg.tree_dir_.c_str(), 0755) != 0) {
      int e = errno;
      std::string dir = cg.tree_dir_;
      cg.tree_dir_.clear();
      return Error{"cgroup v2: mkdir " + dir + ": " + std::strerror(e), e};
    }
    cg.dirs_.push_back(cg.tree_dir_);  // pid 1 goes in, and it is removed with the others
  }
  // CLONE_INTO_CGROUP checks that init may write cgroup.procs of the common ancestor of where
  // it is and where the command goes: this one. Nothing inside can use the delegation: no
  // cgroupfs is mounted there, and the seccomp filter denies mount.
  if (::chown((cg.tree_dir_ + "/cgroup.procs").c_str(), owner, static_cast<gid_t>(-1)) != 0) {
    return Error{"cgroup v2: delegating " + cg.tree_dir_ + ": " + std::strerror(errno), errno};
  }
  return made;
}

Result<ExecTree> StepCgroup::make_exec_tree(const std::string& name) const {
  if (tree_dir_.empty()) return Error{"the sandbox has no cgroup-v2 tree", ENOENT};
  return ExecTree::create(tree_dir_, name, tree_owner_);
}

Result<StepCgroup> StepCgroup::create_limited(const CgroupRoot& root, const std::string& name,
                                              const SandboxSpec& spec) {
  StepCgroup cg;
  for (const auto& c : root.controllers()) {
    std::vector<std::pair<std::string, std::string>> settings;
    if (c.name == "memory" && spec.memory_bytes) {
      std::string bytes = std::to_string(*spec.memory_bytes);
      if (c.v2) {
        settings = {{"memory.max", bytes}, {"memory.swap.max", "0"}, {"memory.oom.group", "1"}};
      } else {
        settings = {{"memory.limit_in_bytes", bytes}, {"memory.memsw.limit_in_bytes", bytes}};
      }
    } else if (c.name == "pids" && spec.pids) {
      settings = {{"pids.max", std::to_string(*spec.pids)}};
    } else if (c.name == "net_cls" && spec.net_class != 0) {
      settings = {{"net_cls.classid", std::to_string(spec.net_class)}};
    } else if (c.name == "cpu" && spec.cpus) {
      auto quota = static_cast<long long>(std::llround(*spec.cpus * 100000));
      if (c.v2) {
        settings = {{"cpu.max", std::to_string(quota) + " 100000"}};
      } else {
        settings = {{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", std::to_string(quota)}};
      }
    }
    if (settings.empty()) continue;
    if (c.dir.empty() && c.name == "net_cls") {
      // Fail closed: without its class the step's sockets would not match its egress rules.
      std::string why = root.net_cls_error().empty() ? "the controller is not available on this host" : root.net_cls_error();
      return Error{"cgroup net_cls: the step's network class (its egress policy) cannot be set: " + why, ENOENT};
    }
    if (c.dir.empty()) {
      return Error{"cgroup " + c.name + ": the controller is not available on this host", ENOENT};
    }
    std::string dir = c.dir + "/" + name;
    if (::mkdir(dir.c_str(), 0755) != 0) {
      return Error{"cgroup " + c.name + ": mkdir " + dir + ": " + std::strerror(errno), errno};
    }
    cg.dirs_.push_back(dir);
    for (const auto& [file, value] : settings) {
      int rc = write_file(dir + "/" + file, value);
      // No swap accounting on this host: memory.memsw.* does not exist, which is fine.
      if (rc == ENOENT && (file == "memory.memsw.limit_in_bytes" || file == "memory.swap.max")) continue;
      if (rc != 0) {
        return Error{"cgroup " + c.name + ": " + file + " = " + value + ": " + std::strerror(rc), rc};
      }
    }
    if (c.name == "net_cls") cg.net_cls_dir_ = dir;
    if (c.name == "pids") cg.pids_dir_ = dir;
    if (c.name == "memory") {
      cg.memory_dir_ = dir;
      cg.memory_v2_ = c.v2;
      if (!c.v2) {
        unique_fd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        unique_fd ofd(::open((dir + "/memory.oom_control").c_str(), O_RDONLY | O_CLOEXEC));
        if (efd && ofd &&
            write_file(dir + "/cgroup.event_control",
                       std::to_string(efd.get()) + " " + std::to_string(ofd.get())) == 0) {
          cg.oom_eventfd_ = std::move(efd);
          cg.oom_control_ = std::move(ofd);
        }
      }
    }
  }
  if (spec.net_class != 0 && cg.net_cls_dir_.empty()) {
    return Error{"cgroup net_cls: the step's network class (its egress policy) cannot be set: this executor "
                 "found no net_cls controller",
                 ENOENT};
  }
  return cg;
}

Status StepCgroup::add(pid_t pid) const {
  for (const auto& dir : dirs_) {
    int rc = write_file(dir + "/cgroup.procs", std::to_string(pid));
    if (rc != 0) return Error{"cgroup: moving the sandbox into " + dir + ": " + std::strerror(rc), rc};
  }
  return {};
}

Status StepCgroup::set_net_class(uint32_t net_class) const {
  if (net_cls_dir_.empty()) return Error{"cgroup net_cls: the sandbox has no net_cls cgroup", ENOENT};
  if (int rc = write_file(net_cls_dir_ + "/net_cls.classid", std::to_string(net_class))) {
    return Error{"cgroup net_cls: net_cls.classid = " + std::to_string(net_class) + ": " + std::strerror(rc), rc};
  }
  return {};
}

std::vector<std::string> StepCgroup::procs_files() const {
  std::vector<std::string> files;
  for (const auto& dir : dirs_) files.push_back(dir + "/cgroup.procs");
  return files;
}

uint64_t StepCgroup::oom_kills() const {
  if (memory_dir_.empty()) return 0;
  std::istringstream in(read_file(memory_dir_ + (memory_v2_ ? "/memory.events" : "/memory.oom_control")));
  std::string key;
  uint64_t value;
  while (in >> key >> value) {
    if (key == "oom_kill") return value;
  }
  return 0;
}

Status StepCgroup::freeze(bool frozen) const {
  if (tree_dir_.empty()) {
    return Error{"freeze needs the sandbox's cgroup-v2 tracking cgroup, which this host does not give "
                 "(cgroup v2 not writable); the v1 freezer is not used, since init and the commands' "
                 "trees live only in the v2 one",
                 ENOTSUP, ErrorCode::unavailable};
  }
  if (int rc = write_file(tree_dir_ + "/cgroup.freeze", frozen ? "1" : "0")) {
    return Error{"cgroup v2: " + tree_dir_ + "/cgroup.freeze: " + std::strerror(rc), rc};
  }
  // The write only asks: tasks stop at their next return to user space, and cgroup.events says
  // "frozen 1" once all of them have. Poll wakes on each change (POLLPRI), so this waits for as
  // long as that takes (about a millisecond) without spinning; bounded for a task stuck in the
  // kernel (an uninterruptible wait on a slow disk).
  const std::string want = frozen ? "frozen 1" : "frozen 0";
  unique_fd events(::open((tree_dir_ + "/cgroup.events").c_str(), O_RDONLY | O_CLOEXEC));
  if (!events) return Error{"cgroup v2: " + tree_dir_ + "/cgroup.events: " + std::strerror(errno), errno};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    char buf[256];
    ssize_t n = ::pread(events.get(), buf, sizeof buf - 1, 0);
    if (n > 0 && std::string_view(buf, static_cast<size_t>(n)).find(want) != std::string_view::npos) return {};
    pollfd p{events.get(), POLLPRI, 0};
    ::poll(&p, 1, 10);
  }
  if (frozen) write_file(tree_dir_ + "/cgroup.freeze", "0");  // not half frozen: thawed again
  return Error{std::string("cgroup v2: the sandbox did not ") + (frozen ? "freeze" : "thaw") +
                   " within 2 s (a process stuck in the kernel)",
               ETIMEDOUT};
}

namespace {

uint64_t read_u64(const std::string& path) {
  std::istringstream in(read_file(path));
  uint64_t v = 0;
  in >> v;
  return v;
}

uint64_t keyed_u64(const std::string& path, const std::string& want) {
  std::istringstream in(read_file(path));
  std::string key;
  uint64_t value;
  while (in >> key >> value) {
    if (key == want) return value;
  }
  return 0;
}

// Processes in `dir` and the cgroups below (the commands' trees), bounded by the depth the
// executor makes (tracking cgroup, then one level of trees).
uint64_t count_procs(const std::string& dir, int depth = 0) {
  uint64_t n = 0;
  std::istringstream procs(read_file(dir + "/cgroup.procs"));
  for (pid_t pid; procs >> pid;) ++n;
  if (depth < 2) {
    for (const auto& sub : subdirs(dir)) n += count_procs(dir + "/" + sub, depth + 1);
  }
  return n;
}

}  // namespace

Result<SandboxUsage> StepCgroup::usage() const {
  if (dirs_.empty()) return Error{"the sandbox has no cgroups (it is gone)", ENOENT, ErrorCode::not_found};
  SandboxUsage u;
  if (!tree_dir_.empty()) {
    u.cpu_ms = keyed_u64(tree_dir_ + "/cpu.stat", "usage_usec") / 1000;
    u.pids = count_procs(tree_dir_);
  }
  if (!pids_dir_.empty()) u.pids = read_u64(pids_dir_ + "/pids.current");
  if (!memory_dir_.empty()) {
    if (memory_v2_) {
      u.memory_bytes = read_u64(memory_dir_ + "/memory.current");
      u.memory_peak_bytes = read_u64(memory_dir_ + "/memory.peak");
    } else {
      u.memory_bytes = read_u64(memory_dir_ + "/memory.usage_in_bytes");
      u.memory_peak_bytes = read_u64(memory_dir_ + "/memory.max_usage_in_bytes");
    }
  }
  u.oom_kills = oom_kills();
  return u;
}

void StepCgroup::remove() {
  oom_eventfd_.reset();
  oom_control_.reset();
  // Commands' trees first (exec_tree.h): those of daemons that outlived their command.
  if (!tree_dir_.empty()) {
    for (const auto& sub : subdirs(tree_dir_)) ::rmdir((tree_dir_ + "/" + sub).c_str());
    tree_dir_.clear();
  }
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) ::rmdir(it->c_str());
  dirs_.clear();
}

StepCgroup::~StepCgroup() { remove(); }

Failure enter_cgroup_namespace() {
  if (::unshare(CLONE_NEWCGROUP) != 0) return fail("cgroup namespace");
  return ok();
}

}  // namespace boxcar::executors::native
