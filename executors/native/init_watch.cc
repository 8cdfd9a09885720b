#include "executors/native/init_watch.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "executors/native/helper_prelude.h"
#include "executors/native/path_walk.h"
#include "executors/native/watch_wire.h"

namespace boxcar::executors::native {

namespace {

// Directories a recursive watch holds at most, and how deep it goes: past them the agent hears
// an overflow (events below are not seen), never a silent gap.
constexpr size_t kMaxWatches = 8192;
constexpr int kMaxDepth = 64;
constexpr uint32_t kMask = IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
                           IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK;

class Helper {
 public:
  // `root`: an O_PATH fd of the sandbox's "/"; `path` the watched directory.
  Helper(int sock, int ino, int root, std::string path, bool recursive)
      : sock_(sock), ino_(ino), root_(root), path_(std::move(path)), recursive_(recursive) {}

  void send(char type, uint8_t flags = 0, std::string_view payload = {}) {
    std::string rec = watch_record(type, flags, payload);
    size_t sent = 0;
    while (sent < rec.size()) {
      ssize_t n = ::send(sock_, rec.data() + sent, rec.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ::_exit(0);  // the agent is gone
      sent += static_cast<size_t>(n);
    }
  }

  // Opens `rel` below the watched directory one component at a time, never following a link:
  // the tree may change under us, and a link swapped in must not lead anywhere else.
  // The watched directory is opened anew each time: a descriptor held on it (or the working
  // directory left in it) would keep the kernel from reporting its deletion (IN_DELETE_SELF).
  int open_below(const std::string& rel) const {
    int fd = PathWalk(root_).open(path_, O_RDONLY | O_DIRECTORY, true);
    size_t start = 0;
    while (fd >= 0 && start < rel.size()) {
      size_t end = rel.find('/', start);
      if (end == std::string::npos) end = rel.size();
      std::string seg = rel.substr(start, end - start);
      int next = ::openat(fd, seg.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      ::close(fd);
      fd = next;
      start = end + 1;
    }
    return fd;
  }

  // Watches the directory `fd` (at `rel`) and, when recursive, what is below it.
  void add(int fd, const std::string& rel, int depth) {
    if (wds_.size() >= kMaxWatches || depth > kMaxDepth) {
      if (!capped_) send('O');
      capped_ = true;
      return;
    }
    if (::fchdir(fd) != 0) return;
    int wd = ::inotify_add_watch(ino_, ".", kMask);
    int add_errno = errno;
    if (::chdir("/") != 0) ::_exit(0);
    errno = add_errno;
    if (wd < 0) {
      if (errno == ENOSPC && !capped_) {  // max_user_watches
        send('O');
        capped_ = true;
      }
      return;
    }
    wds_[wd] = rel;
    if (!recursive_) return;
    int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR* d = dup >= 0 ? ::fdopendir(dup) : nullptr;
    if (!d) {
      if (dup >= 0) ::close(dup);
      return;
    }
    while (dirent* de = ::readdir(d)) {
      if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) continue;
      if (std::strcmp(de->d_name, ".") == 0 || std::strcmp(de->d_name, "..") == 0) continue;
      int sub = ::openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) continue;
      add(sub, rel.empty() ? std::string(de->d_name) : rel + "/" + de->d_name, depth + 1);
      ::close(sub);
    }
    ::closedir(d);
  }

  // A directory moved away or deleted: its watches (and those below) name stale paths.
  void forget(const std::string& rel) {
    for (auto it = wds_.begin(); it != wds_.end();) {
      const std::string& p = it->second;
      if (it->first != root_wd_ && (p == rel || (p.size() > rel.size() && p.compare(0, rel.size(), rel) == 0 &&
                                                   p[rel.size()] == '/'))) {
        ::inotify_rm_watch(ino_, it->first);
        it = wds_.erase(it);
      } else {
        ++it;
      }
    }
  }

  [[noreturn]] void run() {
    int top = open_below("");
    if (top < 0) fail("watch " + path_, errno);
    errno = 0;
    add(top, "", 0);
    int add_errno = errno;
    ::close(top);
    errno = add_errno;
    root_wd_ = wds_.empty() ? -1 : wds_.begin()->first;
    if (root_wd_ < 0) fail("watch", errno ? errno : EIO);
    for (auto& [wd, rel] : wds_) {
      if (rel.empty()) root_wd_ = wd;
    }
    send('W');
    alignas(inotify_event) char buf[65536];
    for (;;) {
      ssize_t n = ::read(ino_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("read inotify", n < 0 ? errno : EIO);
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        handle(*ev);
      }
    }
  }

  [[noreturn]] void fail(const std::string& what, int err) {
    std::string payload;
    payload.push_back(static_cast<char>(err & 0xff));
    payload.push_back(static_cast<char>((err >> 8) & 0xff));
    payload += what + ": " + std::strerror(err);
    send('X', 0, payload);
    ::_exit(0);
  }

 private:
  void handle(const inotify_event& ev) {
    if (ev.mask & IN_Q_OVERFLOW) return send('O');
    if (ev.wd == root_wd_ && (ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))) {
      send('E');
      ::_exit(0);
    }
    if (ev.mask & IN_IGNORED) {
      wds_.erase(ev.wd);
      return;
    }
    auto it = wds_.find(ev.wd);
    if (it == wds_.end() || ev.len == 0) return;  // a subdirectory's own DELETE_SELF: its parent said it
    std::string name(ev.name);
    std::string rel = it->second.empty() ? name : it->second + "/" + name;
    const bool dir = ev.mask & IN_ISDIR;
    WatchEvent::Kind kind;
    if (ev.mask & IN_CREATE) kind = WatchEvent::Kind::create;
    else if (ev.mask & IN_DELETE) kind = WatchEvent::Kind::remove;
    else if (ev.mask & IN_MOVED_FROM) kind = WatchEvent::Kind::move_from;
    else if (ev.mask & IN_MOVED_TO) kind = WatchEvent::Kind::move_to;
    else if (ev.mask & IN_ATTRIB) kind = WatchEvent::Kind::attrib;
    else kind = WatchEvent::Kind::modify;
    send('C', static_cast<uint8_t>(static_cast<uint8_t>(kind) | (dir ? 0x80 : 0)), rel);
    if (!recursive_ || !dir) return;
    if (kind == WatchEvent::Kind::move_from || kind == WatchEvent::Kind::remove) forget(rel);
    if (kind == WatchEvent::Kind::create || kind == WatchEvent::Kind::move_to) {
      int fd = open_below(rel);
      if (fd >= 0) {
        add(fd, rel, static_cast<int>(std::count(rel.begin(), rel.end(), '/')) + 1);
        ::close(fd);
      }
    }
  }

  int sock_, ino_, root_;
  std::string path_;
  bool recursive_;
  bool capped_ = false;
  int root_wd_ = -1;
  std::map<int, std::string> wds_;
};

[[noreturn]] void run_watch_helper(const std::string& body, int sock, const CapSet& caps) {
  sock = enter_helper(sock, caps, "boxcar-watch");
  WatchRequest q;
  Helper bad(sock, -1, -1, "", false);
  if (!decode_watch_request(body, q)) bad.fail("malformed watch request", EINVAL);
  int root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) bad.fail("open /", errno);
  int ino = ::inotify_init1(IN_CLOEXEC);
  if (ino < 0) bad.fail("inotify_init1", errno);
  Helper(sock, ino, root, q.path, q.recursive).run();
}

}  // namespace

void start_watch_helper(const std::string& body, const std::vector<int>& fds, const CapSet& caps) {
  if (fds.size() != 1) return;
  pid_t pid = ::fork();
  if (pid == 0) run_watch_helper(body, fds[0], caps);
  // pid < 0: the socket closes unanswered, which ends the watch with an error.
}

}  // namespace boxcar::executors::native
