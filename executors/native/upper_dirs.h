// UpperDirs: the writable layers of one executor's image sandboxes on disk, and the removal of
// what a dead agent left. Agents on one host share state_dir, so each executor instance owns
// <root>/<instance>/ and holds an flock on <root>/<instance>.lock while it lives; whoever can
// take an instance's lock is looking at a dead instance and removes its directory.
//
// With a write limit (NativeOptions::max_image_write) each upper lives on a LoopFs of that
// size (loop_fs.h). Attaching and mounting one costs 10-60 ms and detaching one as much, far
// more than the rest of a sandbox's start; so a thread of the instance keeps a few mounted
// ahead and takes the released ones down, off the step's path.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::executors::native {

class LoopFsPool;

// One sandbox's <instance>/<name>/ with upper/ and work/ in it; removed when released.
class UpperDir {
 public:
  UpperDir() = default;
  explicit UpperDir(std::filesystem::path dir, std::shared_ptr<LoopFsPool> pool = {})
      : dir_(std::move(dir)), pool_(std::move(pool)) {}
  UpperDir(UpperDir&& o) noexcept : dir_(std::exchange(o.dir_, {})), pool_(std::move(o.pool_)) {}
  UpperDir& operator=(UpperDir&& o) noexcept;
  ~UpperDir() { remove(); }

  std::filesystem::path upper() const { return dir_ / "upper"; }
  std::filesystem::path work() const { return dir_ / "work"; }
  bool held() const { return !dir_.empty(); }
  // Whether the sandbox filled its write limit (no block or inode left); false without one.
  bool full() const;
  // The write limit in bytes; 0 for none.
  uint64_t limit() const;
  // Removes the directory and everything the sandbox wrote (never following a link). Call it
  // once the sandbox's processes are gone. Idempotent. A LoopFs goes in the background.
  void remove();

 private:
  std::filesystem::path dir_;
  std::shared_ptr<LoopFsPool> pool_;  // set when dir_ is a LoopFs of the pool's
};

class UpperDirs {
 public:
  // Creates <root> (0700 root) and this instance's directory, after removing every dead
  // instance's (and its lock file). Live instances' directories are left alone. With
  // `limit_bytes` (0: none) every upper is a LoopFs of that size: the template is made here
  // (an Error when this host cannot: no mke2fs, no loop devices).
  static Result<std::unique_ptr<UpperDirs>> open(const std::filesystem::path& root, uint64_t limit_bytes = 0);

  // <instance>/<name>/{upper,work}: all 0700 root but upper, which is 0755 and owned by
  // `owner`:`owner` (root inside the sandbox, as the merged root's own attributes come from it).
  Result<UpperDir> create(const std::string& name, uid_t owner);

  const std::filesystem::path& dir() const { return dir_; }

  // The instance's directory and lock file go with it (its sandboxes went before: they hold
  // the executor's shared state).
  ~UpperDirs();

 private:
  UpperDirs(std::filesystem::path dir, unique_fd lock) : dir_(std::move(dir)), lock_(std::move(lock)) {}
  std::filesystem::path dir_;
  unique_fd lock_;  // flock(LOCK_EX) held while this instance lives
  std::shared_ptr<LoopFsPool> pool_;  // with a limit
};

// The LoopFs directories of one instance: <dir>/<name>/ mounted from <dir>/<name>.img, a copy
// of <dir>/template.img. A thread keeps `spare` of them mounted ahead and unmounts the
// released ones; take() makes one at once when none is ready.
class LoopFsPool {
 public:
  static Result<std::shared_ptr<LoopFsPool>> open(std::filesystem::path dir, uint64_t limit_bytes, size_t spare = 2);
  ~LoopFsPool();  // unmounts what is ready and what was released, then stops the thread

  Result<std::filesystem::path> take();
  void release(std::filesystem::path dir);  // unmounted and removed by the thread
  uint64_t limit() const { return limit_; }

 private:
  LoopFsPool(std::filesystem::path dir, uint64_t limit, size_t spare)
      : dir_(std::move(dir)), limit_(limit), spare_(spare) {}
  Result<std::filesystem::path> make();
  void run();

  std::filesystem::path dir_;
  uint64_t limit_;
  size_t spare_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::filesystem::path> ready_, released_;  // guarded by mu_
  bool stopping_ = false, failing_ = false;              // guarded by mu_
  uint64_t counter_ = 0;                                 // guarded by mu_
  std::thread thread_;
};

}  // namespace boxcar::executors::native
