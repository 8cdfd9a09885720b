#include "executors/native/upper_dirs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "base/private_dir.h"
#include "base/random_token.h"
#include "executors/native/loop_fs.h"

namespace boxcar::executors::native {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLockSuffix = ".lock";

Error upper_error(const std::string& what, const fs::path& path, int err) {
  return Error{"image root upper directory: " + what + " " + path.string() + ": " + std::strerror(err), err};
}

constexpr const char* kTemplate = "template.img";

// An instance's directory and everything in it; its LoopFs mounts (its direct children) are
// detached first, so that removing goes no deeper than their mount points.
void remove_instance_dir(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec) && !entry.is_symlink(ec)) ::umount2(entry.path().c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
  }
  fs::remove_all(dir, ec);
}

// Takes the lock of instance `name` if nobody holds it: its agent is dead, so its directory
// and lock file go. A live instance's lock is held, and nothing of it is touched.
void remove_if_dead(const fs::path& root, const std::string& name) {
  fs::path lock_path = root / (name + kLockSuffix);
  unique_fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return;
  remove_instance_dir(root / name);
  ::unlink(lock_path.c_str());
}

}  // namespace

UpperDir& UpperDir::operator=(UpperDir&& o) noexcept {
  if (this != &o) {
    remove();
    dir_ = std::exchange(o.dir_, {});
    pool_ = std::move(o.pool_);
  }
  return *this;
}

void UpperDir::remove() {
  if (dir_.empty()) return;
  if (pool_) {
    pool_->release(std::exchange(dir_, {}));
    pool_.reset();
    return;
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);  // symlinks are removed, not followed
  dir_.clear();
}

bool UpperDir::full() const { return pool_ && !dir_.empty() && loop_fs_full(dir_).value_or(false); }

uint64_t UpperDir::limit() const { return pool_ ? pool_->limit() : 0; }

namespace {

// Root works in `dir` by path (mkdir, chown, remove_all): every directory from / down to it must
// be root's and writable by nobody else (or sticky, like /tmp), or a local user who made one of
// them could swap what lies below for links and have root chown or delete any file.
Status check_only_root_can_change(const fs::path& dir) {
  fs::path at = "/";
  fs::path absolute = fs::absolute(dir).lexically_normal();
  for (auto it = absolute.begin(); it != absolute.end(); ++it) {
    if (it != absolute.begin()) at /= *it;
    struct stat st{};
    if (::lstat(at.c_str(), &st) != 0) {
      if (errno == ENOENT) return {};  // made below, by root
      return Error{"image sandboxes' writable layers under " + dir.string() + ": " + at.string() + ": " +
                       std::strerror(errno),
                   errno, ErrorCode::unavailable, "uppers_dir"};
    }
    bool others_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !(st.st_mode & S_ISVTX);
    if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || others_write) {
      return Error{"image sandboxes' writable layers under " + dir.string() + ": " + at.string() +
                       (S_ISDIR(st.st_mode) ? " may be changed by a user other than root" : " is not a directory") +
                       "; use a directory only root can change (the default is /var/lib/boxcar/uppers)",
                   0, ErrorCode::unavailable, "uppers_dir"};
    }
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<UpperDirs>> UpperDirs::open(const fs::path& root, uint64_t limit_bytes) {
  if (Status safe = check_only_root_can_change(root); !safe) return safe.error();
  if (Status made = make_private_dir(root); !made) return made.error();
  if (Status safe = check_only_root_can_change(root); !safe) return safe.error();  // what was made
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // a lock being created (see below)
    if (name.ends_with(kLockSuffix)) name.resize(name.size() - std::strlen(kLockSuffix));
    remove_if_dead(root, name);
  }
  // The name is new (pid, counter and randomness); the lock is taken under a hidden name and
  // renamed into place, so no scanner ever sees an instance's lock file unlocked.
  static std::atomic<uint64_t> counter{0};
  auto token = random_token(4);
  if (!token) return token.error();
  std::string name = std::to_string(::getpid()) + "-" + std::to_string(++counter) + "-" + *token;
  fs::path hidden = root / ("." + name + kLockSuffix);
  unique_fd lock(::open(hidden.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!lock) return upper_error("creating", hidden, errno);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return upper_error("locking", hidden, errno);
  fs::path lock_path = root / (name + kLockSuffix);
  if (::rename(hidden.c_str(), lock_path.c_str()) != 0) return upper_error("renaming", hidden, errno);
  fs::path dir = root / name;
  if (::mkdir(dir.c_str(), 0700) != 0) return upper_error("creating", dir, errno);
  std::unique_ptr<UpperDirs> dirs(new UpperDirs(dir, std::move(lock)));
  if (limit_bytes > 0) {
    auto pool = LoopFsPool::open(dir, limit_bytes);
    if (!pool) return pool.error();
    dirs->pool_ = std::move(*pool);
  }
  return dirs;
}

UpperDirs::~UpperDirs() {
  pool_.reset();  // its thread has unmounted its filesystems (the sandboxes went before)
  remove_instance_dir(dir_);
  ::unlink((dir_.string() + kLockSuffix).c_str());
}

Result<UpperDir> UpperDirs::create(const std::string& name, uid_t owner) {
  UpperDir made;  // removed again on failure below
  if (pool_) {
    auto dir = pool_->take();
    if (!dir) return dir.error();
    made = UpperDir(*dir, pool_);
  } else {
    fs::path dir = dir_ / name;
    if (::mkdir(dir.c_str(), 0700) != 0) return upper_error("creating", dir, errno);
    made = UpperDir(dir);
  }
  if (::mkdir(made.work().c_str(), 0700) != 0) return upper_error("creating", made.work(), errno);
  if (::mkdir(made.upper().c_str(), 0755) != 0) return upper_error("creating", made.upper(), errno);
  if (::chown(made.upper().c_str(), owner, owner) != 0) return upper_error("chown", made.upper(), errno);
  // mkdir's mode went through the umask (boxcar serve keeps 077).
  if (::chmod(made.upper().c_str(), 0755) != 0) return upper_error("chmod", made.upper(), errno);
  return made;
}

Result<std::shared_ptr<LoopFsPool>> LoopFsPool::open(fs::path dir, uint64_t limit_bytes, size_t spare) {
  return std::shared_ptr<LoopFsPool>(new LoopFsPool(std::move(dir), limit_bytes, spare));
}

LoopFsPool::~LoopFsPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<fs::path> LoopFsPool::make() {
  fs::path dir;
  {
    std::lock_guard lock(mu_);
    dir = dir_ / ("f" + std::to_string(++counter_));
  }
  if (::mkdir(dir.c_str(), 0700) != 0) return upper_error("creating", dir, errno);
  if (Status st = mount_loop_fs(dir_ / kTemplate, dir.string() + ".img", dir); !st) {
    ::rmdir(dir.c_str());
    return st.error();
  }
  return dir;
}

Result<fs::path> LoopFsPool::take() {
  std::unique_lock lock(mu_);
  if (!ready_.empty()) {
    fs::path dir = std::move(ready_.front());
    ready_.pop_front();
    cv_.notify_all();  // make the next one
    return dir;
  }
  // The first image sandbox makes the template and starts the thread: a run without image
  // steps pays for neither.
  if (!thread_.joinable()) {
    if (Status made = make_loop_fs_template(dir_ / kTemplate, limit_); !made) return made.error();
    thread_ = std::thread([this] { run(); });
  }
  failing_ = false;
  lock.unlock();
  return make();
}

void LoopFsPool::release(fs::path dir) {
  {
    std::lock_guard lock(mu_);
    released_.push_back(std::move(dir));
  }
  cv_.notify_all();
}

void LoopFsPool::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !released_.empty() || (ready_.size() < spare_ && !failing_); });
    if (!released_.empty()) {
      fs::path dir = std::move(released_.front());
      released_.pop_front();
      lock.unlock();
      unmount_loop_fs(dir.string() + ".img", dir);
      lock.lock();
      continue;
    }
    if (stopping_) break;
    lock.unlock();
    auto made = make();
    lock.lock();
    // A failure is reported by the next take(), which tries again itself.
    if (made) ready_.push_back(std::move(*made));
    else failing_ = true;
  }
  for (const auto& dir : ready_) unmount_loop_fs(dir.string() + ".img", dir);
  ready_.clear();
}

}  // namespace boxcar::executors::native
