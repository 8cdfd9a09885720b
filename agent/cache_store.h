// CacheStore: the dependency caches of [[step.cache]] kept on one machine, per repository, as
// plain directory trees that a step's /workspace (and home) mounts as overlay lower layers, so a
// restore costs a mount, not a copy.
//
//   <dir>/<repo id>/<key id>/{entry,lock}   key id = sha256(key)[:32], repo id = sha256(url)[:32]
//   <dir>/<repo id>/<key id>/entry/{key,workspace/...,home/...}
//   <dir>/<repo id>/.new-*/                 a save in progress (renamed into place when whole)
//
// Entries are immutable once in place. Agents of one machine may share a store: a held entry
// keeps a shared flock on its lock file, which eviction (an exclusive, non-blocking flock) never
// breaks; the lock file's mtime is its last use. Never shared between repositories.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::agent {

struct CacheStoreOptions {
  std::filesystem::path dir;
  uint64_t max_bytes = 10ull << 30;  // --cache-size: least recently used entries go past it
};

// An entry found for a step, held (never evicted) until this is destroyed.
struct CacheHit {
  std::string key;                  // the entry's own key
  bool exact = false;               // else found by `prefix`
  std::string prefix;
  std::filesystem::path workspace;  // entry/workspace: a lower layer of /workspace
  std::filesystem::path home;       // entry/home: a lower layer of the step's home
  unique_fd hold;
};

struct CacheSaved {
  uint64_t bytes = 0;
  std::vector<std::string> warnings;  // what was left out (a link pointing out, a device), one line each
};

class CacheStore {
 public:
  static Result<CacheStore> open(CacheStoreOptions options);

  // The repository's id: what jobs know it by (a clone URL; `boxcar run`: origin's URL or the path).
  static std::string repo_id(const std::string& repository);

  // `key` exactly, else for each of `restore_keys` in order the newest entry whose key starts
  // with it. Marks the entry used. nullopt: a miss.
  std::optional<CacheHit> lookup(const std::string& repository, const std::string& key,
                                 const std::vector<std::string>& restore_keys) const;
  bool contains(const std::string& repository, const std::string& key) const;

  // Copies `paths` (workspace-relative, or "~/..." from `homes`, each that directory's own fd)
  // into a new entry
  // `key`, then evicts past the size cap. Blocking (a worker thread's). Links are kept when they
  // point inside the saved path's root (the workspace, or the home path itself), else left out with a
  // warning; devices, FIFOs and sockets are left out. An entry over the cap is not kept. A key
  // already present is left alone (ok, 0 bytes).
  Result<CacheSaved> save(const std::string& repository, const std::string& key, int workspace,
                          const std::map<std::string, int>& homes, const std::vector<std::string>& paths);

  // Unpacks a tar of pack_cache_entry's (a server's copy; cache_archive.h) from `tar_fd` as entry
  // `key`, by images/unpack.h's rules for a hostile tar (nothing lands outside, no link followed,
  // no setuid bit; owners become 0, as a save's are), bounded by max_bytes; a tar holding anything
  // but workspace/ and home/, or a whiteout name (".wh.*": a cache is not an image layer), is
  // refused. Blocking. The entry's bytes.
  Result<uint64_t> unpack(const std::string& repository, const std::string& key, int tar_fd);

  // Removes least recently used entries not held (nor `keep`, an entry just made) until the
  // store is at most max_bytes.
  void evict(const std::filesystem::path& keep = {});
  uint64_t bytes() const;  // of every entry, all repositories

  const CacheStoreOptions& options() const { return options_; }

 private:
  explicit CacheStore(CacheStoreOptions options) : options_(std::move(options)) {}
  std::filesystem::path entry_dir(const std::string& repository, const std::string& key) const;
  std::optional<CacheHit> hold(const std::filesystem::path& dir, const std::string& key) const;

  CacheStoreOptions options_;
};

}  // namespace boxcar::agent
