// UpperDirs: the writable layers of one executor's image sandboxes on disk, and the removal of
// what a dead agent left. Agents on one host share state_dir, so each executor instance owns
// <root>/<instance>/ and holds an flock on <root>/<instance>.lock while it lives; whoever can
// take an instance's lock is looking at a dead instance and removes its directory.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::executors::native {

// One sandbox's <instance>/<name>/ with upper/ and work/ in it; removed when released.
class UpperDir {
 public:
  UpperDir() = default;
  explicit UpperDir(std::filesystem::path dir) : dir_(std::move(dir)) {}
  UpperDir(UpperDir&& o) noexcept : dir_(std::exchange(o.dir_, {})) {}
  UpperDir& operator=(UpperDir&& o) noexcept;
  ~UpperDir() { remove(); }

  std::filesystem::path upper() const { return dir_ / "upper"; }
  std::filesystem::path work() const { return dir_ / "work"; }
  bool held() const { return !dir_.empty(); }
  // Removes the directory and everything the sandbox wrote (never following a link). Call it
  // once the sandbox's processes are gone. Idempotent.
  void remove();

 private:
  std::filesystem::path dir_;
};

class UpperDirs {
 public:
  // Creates <root> (0700 root) and this instance's directory, after removing every dead
  // instance's (and its lock file). Live instances' directories are left alone.
  static Result<std::unique_ptr<UpperDirs>> open(const std::filesystem::path& root);

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
};

}  // namespace boxcar::executors::native
