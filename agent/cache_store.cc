#include "agent/cache_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <utility>
#include <sstream>

#include "agent/cache_archive.h"
#include "agent/cache_tree.h"
#include "base/hex.h"
#include "base/random_token.h"
#include "base/sha256.h"
#include "base/tree_walk.h"
#include "images/unpack.h"

namespace boxcar::agent {
namespace {

namespace fs = std::filesystem;

std::string read_small(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str().substr(0, 4096);
}

bool write_small(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out.flush());
}

// A link kept in a cache must resolve inside its root as the step sees it: relative, and never
// climbing above the root from where it sits.
bool link_stays_inside(const std::string& path, const std::string& target) {
  if (target.empty() || target[0] == '/') return false;
  std::vector<std::string> parts;
  std::string dir = path.substr(0, path.rfind('/') == std::string::npos ? 0 : path.rfind('/'));
  auto push = [&parts](std::string_view text) {
    size_t start = 0;
    while (start <= text.size()) {
      size_t slash = text.find('/', start);
      if (slash == std::string_view::npos) slash = text.size();
      std::string_view seg = text.substr(start, slash - start);
      if (seg == "..") {
        if (parts.empty()) return false;
        parts.pop_back();
      } else if (!seg.empty() && seg != ".") {
        parts.emplace_back(seg);
      }
      start = slash + 1;
    }
    return true;
  };
  return push(dir) && push(target);
}

// A failed copy_file_range copied nothing yet only if the output is still empty.
bool bytes_before_fallback_ok(int out) {
  struct stat st {};
  return ::fstat(out, &st) == 0 && st.st_size == 0;
}

Status copy_file(int src_dir, const char* name, const fs::path& dest, mode_t mode, uint64_t& bytes,
                 uint64_t max_bytes) {
  int src = ::openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (src < 0) return Error{"cannot open " + dest.filename().string(), errno};
  unique_fd in(src);
  unique_fd out(::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777));
  if (!out) return Error{"cannot create " + dest.string() + ": " + std::strerror(errno), errno};
  // copy_file_range where the kernel can (a reflink on one filesystem), else read and write: an
  // overlay view is another filesystem than the store.
  bool plain = false;
  std::vector<char> buffer;
  while (true) {
    ssize_t n;
    if (!plain) {
      n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, 1 << 30, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) && bytes_before_fallback_ok(out.get())) {
        plain = true;
        buffer.resize(1 << 20);
        continue;
      }
    } else {
      n = ::read(in.get(), buffer.data(), buffer.size());
      if (n > 0) {
        for (ssize_t done = 0; done < n;) {
          ssize_t w = ::write(out.get(), buffer.data() + done, static_cast<size_t>(n - done));
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) return Error{"cannot write " + dest.string() + ": " + std::strerror(errno), errno};
          done += w;
        }
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{"cannot copy into " + dest.string() + ": " + std::strerror(errno), errno};
    if (n == 0) break;
    bytes += static_cast<uint64_t>(n);
    if (bytes > max_bytes) {
      return Error{"over the cache size cap of " + std::to_string(max_bytes >> 20) + " MiB", 0,
                   ErrorCode::limit_exceeded};
    }
  }
  // The mode as written, without setuid/setgid: a cache never carries a privileged file.
  ::fchmod(out.get(), mode & 0777);
  return Status{};
}

struct EntryInfo {
  fs::path dir;
  uint64_t bytes = 0;
  fs::file_time_type used;
};

// A new entry is made in <repository dir>/.new-<random> and renamed into place; until then (an
// error, a refused tar) it is removed again, so a failed save or unpack leaves nothing half made.
class NewEntryDir {
 public:
  static Result<NewEntryDir> make(const fs::path& repo_dir) {
    auto token = random_token(8);
    if (!token) return token.error();
    fs::path path = repo_dir / (".new-" + *token);
    if (::mkdir(path.c_str(), 0700) != 0) return Error{"cannot create " + path.string(), errno};
    return NewEntryDir(std::move(path));
  }
  NewEntryDir(NewEntryDir&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  NewEntryDir& operator=(NewEntryDir&&) = delete;
  ~NewEntryDir() {
    std::atomic<bool> never{false};
    if (!path_.empty()) remove_tree(path_, never);
  }
  const fs::path& path() const { return path_; }
  void keep() { path_.clear(); }  // renamed into place

 private:
  explicit NewEntryDir(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

}  // namespace

Result<CacheStore> CacheStore::open(CacheStoreOptions options) {
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) {
    return Error{"cannot create the cache store " + options.dir.string() + ": " + ec.message(),
                 ec.value(), ErrorCode::unavailable, "cache_dir"};
  }
  ::chmod(options.dir.c_str(), 0700);
  return CacheStore(std::move(options));
}

std::string CacheStore::repo_id(const std::string& repository) {
  return sha256_hex("repository\n" + repository).substr(0, 32);
}

fs::path CacheStore::entry_dir(const std::string& repository, const std::string& key) const {
  return options_.dir / repo_id(repository) / sha256_hex("key\n" + key).substr(0, 32);
}

std::optional<CacheHit> CacheStore::hold(const fs::path& dir, const std::string& key) const {
  unique_fd lock(::open((dir / "lock").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!lock || ::flock(lock.get(), LOCK_SH) != 0) return std::nullopt;
  // Eviction renames an entry away under its exclusive lock: still the same file at that name?
  struct stat held {}, now {};
  if (::fstat(lock.get(), &held) != 0 || ::stat((dir / "lock").c_str(), &now) != 0 ||
      held.st_ino != now.st_ino || held.st_dev != now.st_dev) {
    return std::nullopt;
  }
  ::futimens(lock.get(), nullptr);  // its last use, for eviction
  CacheHit hit;
  hit.key = key;
  hit.workspace = dir / "entry" / "workspace";
  hit.home = dir / "entry" / "home";
  hit.hold = std::move(lock);
  return hit;
}

bool CacheStore::contains(const std::string& repository, const std::string& key) const {
  return fs::exists(entry_dir(repository, key) / "lock");
}

std::optional<CacheHit> CacheStore::lookup(const std::string& repository, const std::string& key,
                                           const std::vector<std::string>& restore_keys) const {
  if (auto hit = hold(entry_dir(repository, key), key)) {
    hit->exact = true;
    return hit;
  }
  struct Candidate {
    fs::path dir;
    std::string key;
    fs::file_time_type made;
  };
  std::vector<Candidate> entries;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.dir / repo_id(repository), ec)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(".")) continue;
    std::error_code made_ec;
    auto made = fs::last_write_time(e.path() / "bytes", made_ec);
    if (made_ec) continue;
    entries.push_back({e.path(), read_small(e.path() / "entry" / "key"), made});
  }
  for (const std::string& prefix : restore_keys) {
    std::vector<const Candidate*> matching;
    for (const Candidate& c : entries) {
      if (c.key.starts_with(prefix)) matching.push_back(&c);
    }
    std::sort(matching.begin(), matching.end(),
              [](const Candidate* a, const Candidate* b) { return a->made > b->made; });
    for (const Candidate* c : matching) {
      if (auto hit = hold(c->dir, c->key)) {
        hit->prefix = prefix;
        return hit;
      }
    }
  }
  return std::nullopt;
}

Result<CacheSaved> CacheStore::save(const std::string& repository, const std::string& key,
                                    int workspace, const std::map<std::string, int>& homes,
                                    const std::vector<std::string>& paths) {
  fs::path final_dir = entry_dir(repository, key);
  if (contains(repository, key)) return CacheSaved{};
  fs::path repo_dir = final_dir.parent_path();
  std::error_code ec;
  fs::create_directories(repo_dir, ec);
  auto made = NewEntryDir::make(repo_dir);
  if (!made) return made.error();
  const fs::path& tmp = made->path();
  for (const char* part : {"entry/workspace", "entry/home"}) {
    fs::create_directories(tmp / part, ec);
    if (ec) return Error{"cannot create " + (tmp / part).string() + ": " + ec.message(), ec.value()};
  }
  CacheSaved saved;
  for (const std::string& p : paths) {
    bool in_home = p.starts_with("~/");
    auto home = homes.find(p);
    int root = !in_home ? workspace : home == homes.end() ? -1 : home->second;
    std::string rel = in_home ? "" : p;  // a home path's fd is the directory itself
    if (root < 0) {
      saved.warnings.push_back("\"" + p + "\" left out: the step has no layer for it");
      continue;
    }
    fs::path base = in_home ? tmp / "entry" / "home" / p.substr(2) : tmp / "entry" / "workspace";
    fs::create_directories(in_home ? base : (base / rel).parent_path(), ec);
    Status s = walk_cache_tree(root, rel, [&](const std::string& path, int dirfd, const char* name,
                                              const struct stat& st, bool& descend) -> Status {
      fs::path dest = base / path;
      if (S_ISDIR(st.st_mode)) {
        if (::mkdir(dest.c_str(), (st.st_mode & 0777) | 0700) != 0 && errno != EEXIST) {
          return Error{"cannot create " + dest.string() + ": " + std::strerror(errno), errno};
        }
      } else if (S_ISREG(st.st_mode)) {
        return copy_file(dirfd, name, dest, st.st_mode, saved.bytes, options_.max_bytes);
      } else if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = ::readlinkat(dirfd, name, target, sizeof target - 1);
        if (n < 0) return Error{"cannot read the link " + path, errno};
        std::string text(target, static_cast<size_t>(n));
        if (!link_stays_inside(path, text)) {
          saved.warnings.push_back("\"" + (in_home ? p + "/" : "") + path + "\" left out: a link pointing out of " +
                                   (in_home ? p : "the workspace") + " (" + text + ")");
          return Status{};
        }
        if (::symlink(text.c_str(), dest.c_str()) != 0) {
          return Error{"cannot create the link " + dest.string(), errno};
        }
      } else {
        saved.warnings.push_back("\"" + path + "\" left out: not a file, directory or link");
        descend = false;
      }
      return Status{};
    });
    if (!s) return Error{"\"" + p + "\": " + s.error().message, s.error().err, s.error().code};
  }
  if (!write_small(tmp / "entry" / "key", key) || !write_small(tmp / "bytes", std::to_string(saved.bytes)) ||
      !write_small(tmp / "lock", "")) {
    return Error{"cannot write the entry's files in " + tmp.string(), errno};
  }
  // Named only when whole: an agent that dies while saving leaves a .new-* (removed by the next
  // eviction a day later) and no entry.
  if (::rename(tmp.c_str(), final_dir.c_str()) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) return CacheSaved{};  // another agent saved it first
    return Error{"cannot put the entry in place: " + std::string(std::strerror(errno)), errno};
  }
  made->keep();
  evict(final_dir);
  return saved;
}

Result<uint64_t> CacheStore::unpack(const std::string& repository, const std::string& key, int tar_fd) {
  fs::path final_dir = entry_dir(repository, key);
  if (contains(repository, key)) return uint64_t{0};
  std::error_code ec;
  fs::create_directories(final_dir.parent_path(), ec);
  auto made = NewEntryDir::make(final_dir.parent_path());
  if (!made) return made.error();
  const fs::path& tmp = made->path();
  if (Status s = check_cache_tar(tar_fd); !s) {
    return Error{"the cache tar is refused: " + s.error().message, s.error().err, ErrorCode::invalid_input};
  }
  images::UnpackOptions options;
  options.id_base = 0;  // every owner 0: what a save writes, idmapped to the step's root
  options.id_count = 1;
  options.max_bytes = options_.max_bytes;
  auto stats = images::unpack_layer(tar_fd, "", tmp / "entry", options);
  if (!stats) return Error{"the cache tar is refused: " + stats.error().message, stats.error().err, stats.error().code};
  for (const auto& e : fs::directory_iterator(tmp / "entry")) {
    std::string name = e.path().filename().string();
    if ((name != "workspace" && name != "home") || !e.is_directory() || e.is_symlink()) {
      return Error{"the cache tar is refused: it holds \"" + name + "\" beside workspace/ and home/",
                   0, ErrorCode::invalid_input};
    }
  }
  for (const char* part : {"workspace", "home"}) fs::create_directories(tmp / "entry" / part, ec);
  if (!write_small(tmp / "entry" / "key", key) || !write_small(tmp / "bytes", std::to_string(stats->bytes)) ||
      !write_small(tmp / "lock", "")) {
    return Error{"cannot write the entry's files in " + tmp.string(), errno};
  }
  if (::rename(tmp.c_str(), final_dir.c_str()) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) return uint64_t{0};
    return Error{"cannot put the entry in place: " + std::string(std::strerror(errno)), errno};
  }
  made->keep();
  evict(final_dir);
  return stats->bytes;
}

uint64_t CacheStore::bytes() const {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& repo : fs::directory_iterator(options_.dir, ec)) {
    std::error_code ec2;
    for (const auto& e : fs::directory_iterator(repo.path(), ec2)) {
      if (e.path().filename().string().starts_with(".")) continue;
      total += std::strtoull(read_small(e.path() / "bytes").c_str(), nullptr, 10);
    }
  }
  return total;
}

void CacheStore::evict(const fs::path& keep) {
  std::vector<EntryInfo> entries;
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& repo : fs::directory_iterator(options_.dir, ec)) {
    std::error_code ec2;
    for (const auto& e : fs::directory_iterator(repo.path(), ec2)) {
      std::string name = e.path().filename().string();
      if (name.starts_with(".")) {
        // A save that died (no process holds a .new-* for long) or an eviction that did.
        std::error_code ec3;
        auto age = fs::file_time_type::clock::now() - fs::last_write_time(e.path(), ec3);
        std::atomic<bool> never{false};
        if (!ec3 && (name.starts_with(".old-") || age > std::chrono::hours(24))) remove_tree(e.path(), never);
        continue;
      }
      EntryInfo info;
      info.dir = e.path();
      info.bytes = std::strtoull(read_small(e.path() / "bytes").c_str(), nullptr, 10);
      std::error_code ec3;
      info.used = fs::last_write_time(e.path() / "lock", ec3);
      if (ec3) continue;
      total += info.bytes;
      entries.push_back(std::move(info));
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const EntryInfo& a, const EntryInfo& b) { return a.used < b.used; });
  for (const EntryInfo& e : entries) {
    if (total <= options_.max_bytes) break;
    if (e.dir == keep) continue;  // just saved: its step's dependents are about to use it
    unique_fd lock(::open((e.dir / "lock").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) continue;  // held by a running step
    auto token = random_token(8);
    if (!token) continue;
    fs::path old = e.dir.parent_path() / (".old-" + *token);
    if (::rename(e.dir.c_str(), old.c_str()) != 0) continue;
    lock.reset();
    std::atomic<bool> never{false};
    remove_tree(old, never);
    total -= e.bytes;
  }
}

}  // namespace boxcar::agent
