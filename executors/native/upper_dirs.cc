#include "executors/native/upper_dirs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "base/private_dir.h"
#include "base/random_token.h"

namespace boxcar::executors::native {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLockSuffix = ".lock";

Error upper_error(const std::string& what, const fs::path& path, int err) {
  return Error{"image root upper directory: " + what + " " + path.string() + ": " + std::strerror(err), err};
}

// Takes the lock of instance `name` if nobody holds it: its agent is dead, so its directory
// and lock file go. A live instance's lock is held, and nothing of it is touched.
void remove_if_dead(const fs::path& root, const std::string& name) {
  fs::path lock_path = root / (name + kLockSuffix);
  unique_fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return;
  std::error_code ec;
  fs::remove_all(root / name, ec);
  ::unlink(lock_path.c_str());
}

}  // namespace

UpperDir& UpperDir::operator=(UpperDir&& o) noexcept {
  if (this != &o) {
    remove();
    dir_ = std::exchange(o.dir_, {});
  }
  return *this;
}

void UpperDir::remove() {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);  // symlinks are removed, not followed
  dir_.clear();
}

Result<std::unique_ptr<UpperDirs>> UpperDirs::open(const fs::path& root) {
  if (Status made = make_private_dir(root); !made) return made.error();
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
  return std::unique_ptr<UpperDirs>(new UpperDirs(dir, std::move(lock)));
}

UpperDirs::~UpperDirs() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
  ::unlink((dir_.string() + kLockSuffix).c_str());
}

Result<UpperDir> UpperDirs::create(const std::string& name, uid_t owner) {
  fs::path dir = dir_ / name;
  if (::mkdir(dir.c_str(), 0700) != 0) return upper_error("creating", dir, errno);
  UpperDir made(dir);  // removed again on failure below
  if (::mkdir(made.work().c_str(), 0700) != 0) return upper_error("creating", made.work(), errno);
  if (::mkdir(made.upper().c_str(), 0755) != 0) return upper_error("creating", made.upper(), errno);
  if (::chown(made.upper().c_str(), owner, owner) != 0) return upper_error("chown", made.upper(), errno);
  // mkdir's mode went through the umask (boxcar serve keeps 077).
  if (::chmod(made.upper().c_str(), 0755) != 0) return upper_error("chmod", made.upper(), errno);
  return made;
}

}  // namespace boxcar::executors::native
