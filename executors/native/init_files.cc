#include "executors/native/init_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "executors/native/control_channel.h"
#include "executors/native/file_wire.h"
#include "executors/native/helper_prelude.h"
#include "executors/native/path_walk.h"

namespace boxcar::executors::native {

namespace {

// How deep a recursive list, copy or remove goes (each level holds a directory fd).
constexpr int kMaxDepth = 128;
// What a listing may fill of the reply before it stops and says `truncated`.
constexpr size_t kListBudget = kMaxFileReply - (256u << 10);
constexpr const char* kUploadPrefix = ".boxcar-upload-";

class unique_dir {
 public:
  explicit unique_dir(DIR* d) : d_(d) {}
  ~unique_dir() {
    if (d_) ::closedir(d_);
  }
  DIR* get() const { return d_; }

 private:
  DIR* d_;
};

struct Ctx {
  const FileRequest& q;
  PathWalk walk;
  FileReply reply;
  int out_fd = -1;   // the fd sent back (open_read, open_write)
  size_t count = 0;  // entries listed, copied or removed so far
  size_t bytes = 0;  // of the listing, roughly as encoded
};

// Fills reply.err and the message from errno; returns false so callers can `return failed(...)`.
bool failed(Ctx& c, const std::string& what, int err = errno) {
  c.reply.err = err ? err : EIO;
  c.reply.message = what + ": " + std::strerror(c.reply.err);
  return false;
}

std::string join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string base_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

FileEntry entry_of(const struct stat& st, const std::string& name, const std::string& path) {
  FileEntry e;
  e.name = name;
  e.path = path;
  e.type = S_ISREG(st.st_mode)   ? FileEntry::Type::file
           : S_ISDIR(st.st_mode) ? FileEntry::Type::dir
           : S_ISLNK(st.st_mode) ? FileEntry::Type::symlink
                                 : FileEntry::Type::other;
  e.size = static_cast<uint64_t>(st.st_size);
  e.mode = st.st_mode & 07777;
  e.mtime_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  return e;
}

// The entry `name` in `dir` (not followed); its target when it is a link.
bool entry_at(int dir, const std::string& name, const std::string& path, FileEntry& e) {
  struct stat st;
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  e = entry_of(st, name, path);
  if (S_ISLNK(st.st_mode)) {
    char buf[PATH_MAX];
    ssize_t n = ::readlinkat(dir, name.c_str(), buf, sizeof buf);
    if (n > 0) e.target.assign(buf, static_cast<size_t>(n));
  }
  return true;
}

// Every name in `dir` but . and .., sorted.
bool names_in(int dir, std::vector<std::string>& names) {
  int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  unique_dir d(::fdopendir(fd));
  if (!d.get()) {
    ::close(fd);
    return false;
  }
  errno = 0;
  while (dirent* de = ::readdir(d.get())) {
    if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) names.push_back(de->d_name);
    if (names.size() > kMaxFileEntries) break;  // the caller's cap stops it anyway
  }
  if (errno != 0) return false;
  std::sort(names.begin(), names.end());
  return true;
}

int open_dir_at(int dir, const std::string& name) {
  return ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

bool do_stat(Ctx& c) {
  int fd = c.walk.open(c.q.path, O_PATH, false);
  if (fd < 0) return failed(c, "stat " + c.q.path);
  struct stat st;
  bool ok = ::fstat(fd, &st) == 0;
  if (ok) {
    c.reply.entry = entry_of(st, base_name(c.q.path), c.q.path);
    char buf[PATH_MAX];
    ssize_t n = S_ISLNK(st.st_mode) ? ::readlinkat(fd, "", buf, sizeof buf) : 0;
    if (n > 0) c.reply.entry.target.assign(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return ok || failed(c, "stat " + c.q.path);
}

// Appends the entries of `dir` (at `path`) and, when recursive, of its subdirectories (links are
// listed, never entered). false once the listing is full (truncated) or failed.
bool list_into(Ctx& c, int dir, const std::string& path, int depth) {
  std::vector<std::string> names;
  if (!names_in(dir, names)) return failed(c, "list " + path);
  for (const auto& name : names) {
    if (!c.q.hidden && name[0] == '.') continue;
    FileEntry e;
    if (!entry_at(dir, name, join(path, name), e)) continue;  // gone meanwhile
    size_t size = 64 + e.name.size() + e.path.size() + e.target.size();
    if (c.reply.entries.size() >= c.q.limit || c.bytes + size > kListBudget) {
      c.reply.truncated = true;
      return false;
    }
    c.bytes += size;
    bool sub = c.q.recursive && e.type == FileEntry::Type::dir && depth < kMaxDepth;
    std::string sub_path = e.path;
    c.reply.entries.push_back(std::move(e));
    if (sub) {
      int fd = open_dir_at(dir, name);
      if (fd < 0) continue;
      bool go_on = list_into(c, fd, sub_path, depth + 1);
      ::close(fd);
      if (!go_on) return false;
    }
  }
  return true;
}

bool do_list(Ctx& c) {
  int fd = c.walk.open(c.q.path, O_RDONLY | O_DIRECTORY, true);
  if (fd < 0) return failed(c, "list " + c.q.path);
  list_into(c, fd, c.q.path, 0);
  ::close(fd);
  if (c.reply.truncated) c.reply.err = 0;
  return c.reply.err == 0;
}

// A regular file only: a FIFO or device would block the helper or do something on open.
bool only_regular(Ctx& c, int fd, const std::string& what) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return failed(c, what);
  if (S_ISDIR(st.st_mode)) return failed(c, what, EISDIR);
  if (!S_ISREG(st.st_mode)) {
    c.reply.err = EINVAL;
    c.reply.message = what + ": not a regular file";
    return false;
  }
  c.reply.entry = entry_of(st, base_name(c.q.path), c.q.path);
  return true;
}

bool do_open_read(Ctx& c) {
  int fd = c.walk.open(c.q.path, O_RDONLY | O_NONBLOCK | O_NOCTTY, true);
  if (fd < 0) return failed(c, "open " + c.q.path);
  if (!only_regular(c, fd, "open " + c.q.path)) {
    ::close(fd);
    return false;
  }
  ::fcntl(fd, F_SETFL, 0);
  c.out_fd = fd;
  return true;
}

// mkdir -p of `path` (each missing directory with `mode`), links followed inside.
bool make_dirs(Ctx& c, const std::string& path, unsigned mode) {
  std::string prefix;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) {
      prefix += "/" + path.substr(start, end - start);
      int fd = c.walk.open(prefix, O_PATH | O_DIRECTORY, true);
      if (fd >= 0) {
        ::close(fd);
      } else if (errno == ENOENT) {
        std::string name;
        int parent = c.walk.open_parent(prefix, name);
        if (parent < 0) return failed(c, "mkdir " + prefix);
        int rc = ::mkdirat(parent, name.c_str(), mode);
        int e = errno;
        ::close(parent);
        if (rc != 0 && e != EEXIST) return failed(c, "mkdir " + prefix, e);
      } else {
        return failed(c, "mkdir " + prefix);
      }
    }
    start = end + 1;
  }
  return true;
}

std::string parent_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

bool do_open_write(Ctx& c) {
  const std::string what = "write " + c.q.path;
  if (c.q.parents && !make_dirs(c, parent_of(c.q.path), 0755)) return false;
  if (c.q.append) {
    const int flags = O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY;
    int fd = c.walk.open(c.q.path, flags | O_CREAT | O_EXCL, true, c.q.mode);
    c.reply.created = fd >= 0;
    if (fd < 0 && errno == EEXIST) fd = c.walk.open(c.q.path, flags, true);
    if (fd < 0) return failed(c, what);
    if (!only_regular(c, fd, what)) {
      ::close(fd);
      return false;
    }
    ::fcntl(fd, F_SETFL, O_APPEND);
    c.out_fd = fd;
    return true;
  }
  std::string name;
  int parent = c.walk.open_parent(c.q.path, name);
  if (parent < 0) return failed(c, what);
  struct stat st;
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
    ::close(parent);
    return failed(c, what, EISDIR);
  }
  unsigned char rnd[8];
  if (::getrandom(rnd, sizeof rnd, 0) != sizeof rnd) return failed(c, what);
  std::string tmp = kUploadPrefix;
  for (unsigned char b : rnd) tmp += "0123456789abcdef"[b >> 4], tmp += "0123456789abcdef"[b & 15];
  int fd = ::openat(parent, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, c.q.mode & 0777);
  int e = errno;
  ::close(parent);
  if (fd < 0) return failed(c, what, e);
  c.reply.entry = FileEntry{};
  c.reply.entry.name = tmp;
  c.reply.entry.path = join(parent_of(c.q.path), tmp);
  c.reply.entry.type = FileEntry::Type::file;
  c.out_fd = fd;
  return true;
}

bool do_commit_write(Ctx& c) {
  const std::string what = "write " + c.q.path;
  const std::string& tmp = c.q.to;
  if (tmp.rfind(kUploadPrefix, 0) != 0 || tmp.find('/') != std::string::npos) return failed(c, what, EINVAL);
  std::string name;
  int parent = c.walk.open_parent(c.q.path, name);
  if (parent < 0) return failed(c, what);
  int rc = ::renameat2(parent, tmp.c_str(), parent, name.c_str(), RENAME_NOREPLACE);
  c.reply.created = rc == 0;
  if (rc != 0 && errno == EEXIST) rc = ::renameat(parent, tmp.c_str(), parent, name.c_str());
  int e = errno;
  if (rc != 0) ::unlinkat(parent, tmp.c_str(), 0);
  if (rc == 0) entry_at(parent, name, c.q.path, c.reply.entry);
  ::close(parent);
  return rc == 0 || failed(c, what, e);
}

bool do_mkdir(Ctx& c) {
  if (c.q.parents) return make_dirs(c, c.q.path, c.q.mode & 0777);
  std::string name;
  int parent = c.walk.open_parent(c.q.path, name);
  if (parent < 0) return failed(c, "mkdir " + c.q.path);
  int rc = ::mkdirat(parent, name.c_str(), c.q.mode & 0777);
  int e = errno;
  ::close(parent);
  return rc == 0 || failed(c, "mkdir " + c.q.path, e);
}

// Removes `name` in `dir`, a directory with everything in it.
bool remove_tree(Ctx& c, int dir, const std::string& name, const std::string& path, int depth) {
  if (++c.count > kMaxFileEntries) return failed(c, "remove " + path + ": more than 100000 entries", E2BIG);
  struct stat st;
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return failed(c, "remove " + path);
  if (!S_ISDIR(st.st_mode)) return ::unlinkat(dir, name.c_str(), 0) == 0 || failed(c, "remove " + path);
  if (depth >= kMaxDepth) return failed(c, "remove " + path, ELOOP);
  int fd = open_dir_at(dir, name);
  if (fd < 0) return failed(c, "remove " + path);
  std::vector<std::string> names;
  bool ok = names_in(fd, names) || failed(c, "remove " + path);
  for (size_t i = 0; ok && i < names.size(); ++i) ok = remove_tree(c, fd, names[i], join(path, names[i]), depth + 1);
  ::close(fd);
  return ok && (::unlinkat(dir, name.c_str(), AT_REMOVEDIR) == 0 || failed(c, "remove " + path));
}

bool do_remove(Ctx& c) {
  std::string name;
  int parent = c.walk.open_parent(c.q.path, name);
  if (parent < 0) return failed(c, "remove " + c.q.path);
  struct stat st;
  bool ok;
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    ok = failed(c, "remove " + c.q.path);
  } else if (S_ISDIR(st.st_mode) && !c.q.recursive) {
    ok = ::unlinkat(parent, name.c_str(), AT_REMOVEDIR) == 0;
    if (!ok) {
      int e = errno;
      ok = failed(c, "remove " + c.q.path, e);
      if (e == ENOTEMPTY || e == EEXIST) c.reply.message += " (a directory: remove it with recursive)";
    }
  } else {
    ok = remove_tree(c, parent, name, c.q.path, 0);
  }
  ::close(parent);
  return ok;
}

bool copy_bytes(int from, int to) {
  for (;;) {
    ssize_t n = ::copy_file_range(from, nullptr, to, nullptr, 1 << 30, 0);
    if (n == 0) return true;
    if (n > 0) continue;
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return false;
    break;  // across file systems on older kernels, or not supported: by hand
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      off += w;
    }
  }
}

// Copies `sname` in `sdir` to `dname` in `ddir`: files by content, directories with what they
// hold, links as links; other kinds (FIFOs, devices) are skipped.
bool copy_tree(Ctx& c, int sdir, const std::string& sname, int ddir, const std::string& dname,
               const std::string& spath, int depth) {
  const std::string what = "copy " + spath;
  if (++c.count > kMaxFileEntries) return failed(c, what + ": more than 100000 entries", E2BIG);
  struct stat st;
  if (::fstatat(sdir, sname.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return failed(c, what);
  const unsigned mode = st.st_mode & 0777;
  if (S_ISREG(st.st_mode)) {
    int in = ::openat(sdir, sname.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (in < 0) return failed(c, what);
    int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (c.q.overwrite ? O_TRUNC : O_EXCL);
    int out = ::openat(ddir, dname.c_str(), flags, mode);
    bool ok = out >= 0 && copy_bytes(in, out);
    int e = errno;
    ::close(in);
    if (out >= 0) ::close(out);
    return ok || failed(c, what, e);
  }
  if (S_ISLNK(st.st_mode)) {
    char buf[PATH_MAX];
    ssize_t n = ::readlinkat(sdir, sname.c_str(), buf, sizeof buf - 1);
    if (n < 0) return failed(c, what);
    buf[n] = 0;
    if (c.q.overwrite) ::unlinkat(ddir, dname.c_str(), 0);
    return ::symlinkat(buf, ddir, dname.c_str()) == 0 || failed(c, what);
  }
  if (!S_ISDIR(st.st_mode)) return true;
  if (depth >= kMaxDepth) return failed(c, what, ELOOP);
  if (::mkdirat(ddir, dname.c_str(), mode | 0700) != 0 && !(errno == EEXIST && c.q.overwrite)) return failed(c, what);
  int in = open_dir_at(sdir, sname);
  if (in < 0) return failed(c, what);
  int out = open_dir_at(ddir, dname);
  std::vector<std::string> names;
  bool ok = out >= 0 ? (names_in(in, names) || failed(c, what)) : failed(c, "copy to " + dname);
  for (size_t i = 0; ok && i < names.size(); ++i) {
    ok = copy_tree(c, in, names[i], out, names[i], join(spath, names[i]), depth + 1);
  }
  ::close(in);
  if (out >= 0) {
    if (ok) ::fchmod(out, mode);
    ::close(out);
  }
  return ok;
}

// The source and destination of move and copy, as parent fds and names.
struct TwoEnds {
  int sdir = -1, ddir = -1;
  std::string sname, dname;
  ~TwoEnds() {
    if (sdir >= 0) ::close(sdir);
    if (ddir >= 0) ::close(ddir);
  }
};

bool open_ends(Ctx& c, const std::string& verb, TwoEnds& t) {
  t.sdir = c.walk.open_parent(c.q.path, t.sname);
  if (t.sdir < 0) return failed(c, verb + " " + c.q.path);
  t.ddir = c.walk.open_parent(c.q.to, t.dname);
  if (t.ddir < 0) return failed(c, verb + " to " + c.q.to);
  struct stat st;
  if (::fstatat(t.sdir, t.sname.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return failed(c, verb + " " + c.q.path);
  return true;
}

bool do_copy(Ctx& c) {
  TwoEnds t;
  if (!open_ends(c, "copy", t)) return false;
  struct stat st;
  ::fstatat(t.sdir, t.sname.c_str(), &st, AT_SYMLINK_NOFOLLOW);
  if (S_ISDIR(st.st_mode) && !c.q.recursive) return failed(c, "copy " + c.q.path + " (pass recursive)", EISDIR);
  struct stat dst;
  if (!c.q.overwrite && ::fstatat(t.ddir, t.dname.c_str(), &dst, AT_SYMLINK_NOFOLLOW) == 0) {
    return failed(c, "copy to " + c.q.to, EEXIST);
  }
  return copy_tree(c, t.sdir, t.sname, t.ddir, t.dname, c.q.path, 0);
}

bool do_move(Ctx& c) {
  TwoEnds t;
  if (!open_ends(c, "move", t)) return false;
  int rc = ::renameat2(t.sdir, t.sname.c_str(), t.ddir, t.dname.c_str(), c.q.overwrite ? 0 : RENAME_NOREPLACE);
  if (rc == 0) return true;
  if (errno != EXDEV) return failed(c, "move " + c.q.path + " to " + c.q.to);
  // Across file systems (/tmp and /workspace): copy, then remove the source.
  struct stat dst;
  if (::fstatat(t.ddir, t.dname.c_str(), &dst, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!c.q.overwrite) return failed(c, "move to " + c.q.to, EEXIST);
    if (!remove_tree(c, t.ddir, t.dname, c.q.to, 0)) return false;
  }
  FileRequest copy = c.q;
  copy.overwrite = false;
  Ctx sub{copy, c.walk, {}};
  if (!copy_tree(sub, t.sdir, t.sname, t.ddir, t.dname, c.q.path, 0)) {
    c.reply = std::move(sub.reply);
    return false;
  }
  return remove_tree(c, t.sdir, t.sname, c.q.path, 0);
}

// Writes all of `data` after the first `sent` bytes.
void write_all(int sock, const std::string& data, size_t sent) {
  while (sent < data.size()) {
    ssize_t n = ::send(sock, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    sent += static_cast<size_t>(n);
  }
}

[[noreturn]] void run_helper(const std::string& body, int sock, const CapSet& caps) {
  sock = enter_helper(sock, caps, "boxcar-files");

  FileRequest q;
  FileReply reply;
  int out_fd = -1;
  if (!decode_file_request(body, q)) {
    reply.err = EINVAL;
    reply.message = "malformed file request";
  } else {
    int root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    Ctx c{q, PathWalk(root), {}};
    if (root < 0) {
      failed(c, "open /");
    } else {
      switch (q.op) {
        case FileOp::stat: do_stat(c); break;
        case FileOp::list: do_list(c); break;
        case FileOp::open_read: do_open_read(c); break;
        case FileOp::open_write: do_open_write(c); break;
        case FileOp::commit_write: do_commit_write(c); break;
        case FileOp::mkdir: do_mkdir(c); break;
        case FileOp::move: do_move(c); break;
        case FileOp::copy: do_copy(c); break;
        case FileOp::remove: do_remove(c); break;
      }
    }
    out_fd = c.reply.err == 0 ? c.out_fd : -1;
    reply = std::move(c.reply);
  }
  std::string data = encode_file_reply(reply, out_fd >= 0);
  // The first piece carries the fd; the rest follows as plain bytes.
  std::string first = data.substr(0, std::min<size_t>(data.size(), 4096));
  if (send_message(sock, first, out_fd >= 0 ? &out_fd : nullptr, out_fd >= 0 ? 1 : 0) != 0) ::_exit(1);
  write_all(sock, data, first.size());
  ::_exit(0);
}

}  // namespace

void start_file_helper(const std::string& body, const std::vector<int>& fds, const CapSet& caps) {
  if (fds.size() != 1) return;  // no socket to answer on: the agent's timeout ends the request
  pid_t pid = ::fork();
  if (pid == 0) run_helper(body, fds[0], caps);
  // pid < 0: the socket closes unanswered, which the agent reports.
}

}  // namespace boxcar::executors::native
