#include "images/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <memory>
#include <string_view>
#include <vector>

#include "base/beneath.h"
#include "base/size.h"

namespace boxcar::images {

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

std::string quoted(std::string_view s) { return "layer entry \"" + std::string(s) + "\""; }

Error refuse(std::string_view entry, const std::string& why) {
  return Error{quoted(entry) + ": " + why + "; the layer is refused (rebuild the image without it)", 0,
               ErrorCode::invalid_input};
}

Error failed(std::string_view entry, const std::string& what) {
  int err = errno;
  return Error{quoted(entry) + ": " + what + ": " + std::strerror(err), err};
}

// The compression a layer media type promises (OCI: "...layer.v1.tar+gzip"; Docker:
// "...rootfs.diff.tar.gzip"); -1 for a type that is no layer.
int expected_filter(std::string_view media_type) {
  auto ends = [&](std::string_view s) { return media_type.ends_with(s); };
  if (ends("+gzip") || ends(".tar.gzip")) return ARCHIVE_FILTER_GZIP;
  if (ends("+zstd")) return ARCHIVE_FILTER_ZSTD;
  if (ends(".tar") || ends("+tar")) return ARCHIVE_FILTER_NONE;
  return -1;
}

const char* filter_name(int code) {
  switch (code) {
    case ARCHIVE_FILTER_GZIP: return "gzip";
    case ARCHIVE_FILTER_ZSTD: return "zstd";
    case ARCHIVE_FILTER_NONE: return "uncompressed";
    default: return "another compression";
  }
}

// Removes `name` in `dir` whatever it is, a directory with everything below it included; no
// link is followed (unlinkat removes the link itself).
bool remove_at(int dir, const char* name) {
  if (::unlinkat(dir, name, 0) == 0 || errno == ENOENT) return true;
  if (errno != EISDIR) return false;
  unique_fd d(::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!d) return false;
  DIR* dp = ::fdopendir(::dup(d.get()));
  if (dp == nullptr) return false;
  std::vector<std::string> children;
  while (dirent* e = ::readdir(dp)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) children.emplace_back(e->d_name);
  }
  ::closedir(dp);
  for (const auto& c : children) {
    if (!remove_at(d.get(), c.c_str())) return false;
  }
  return ::unlinkat(dir, name, AT_REMOVEDIR) == 0;
}

class Unpacker {
 public:
  Unpacker(int root, const UnpackOptions& o) : root_(root), o_(o) {}

  Status entry(archive* a, archive_entry* e);
  Status finish();
  const UnpackStats& stats() const { return stats_; }

 private:
  uid_t map_id(int64_t id) const {
    if (id >= 0 && static_cast<uint64_t>(id) < o_.id_count) return o_.id_base + static_cast<uid_t>(id);
    return o_.id_base + std::min<uid_t>(65534, o_.id_count - 1);
  }
  Result<std::vector<std::string>> split(std::string_view path) const;
  Result<unique_fd> parent_of(std::string_view entry, const std::vector<std::string>& comps, size_t n);
  Status write_file(archive* a, archive_entry* e, std::string_view path, int parent, const std::string& name);
  Status hardlink(archive_entry* e, std::string_view path, int parent, const std::string& name);
  Status whiteout(archive_entry* e, std::string_view path, int parent, const std::string& name);
  Status charge(uint64_t n, std::string_view path);
  void set_owner_and_times(archive_entry* e, int parent, const std::string& name);

  int root_;
  const UnpackOptions& o_;
  UnpackStats stats_;
  // Directory mtimes are set last: every entry created inside changes its directory's mtime.
  // Kept by inode, not by path (a million deep paths would hold gigabytes): 24 bytes each.
  struct DirTime {
    ino_t ino;
    timespec mtime;
  };
  std::vector<DirTime> dir_times_;
  void set_dir_times(int dir, size_t depth);
};

// Counts `n` more bytes against the cap: this layer's own, or the image's when its layers share
// one (UnpackOptions::image_bytes).
Status Unpacker::charge(uint64_t n, std::string_view path) {
  uint64_t total = o_.image_bytes ? o_.image_bytes->fetch_add(n) + n : stats_.bytes + n;
  if (total < n || total > o_.max_bytes) {
    return Error{std::string(o_.image_bytes ? "the image" : "the layer") + " unpacks to more than " +
                     format_size(o_.max_bytes) + " (the image cache's size cap), at " + quoted(path) +
                     "; the layer is refused: raise the cap or use a smaller image",
                 0, ErrorCode::limit_exceeded, "image_cache_size"};
  }
  stats_.bytes += n;
  return {};
}

// An entry's path as components; "." and empty components dropped (tars often say "./a").
Result<std::vector<std::string>> Unpacker::split(std::string_view path) const {
  if (path.size() > o_.max_path_bytes) {
    return Error{quoted(path.substr(0, 64)) + "...: path longer than " + std::to_string(o_.max_path_bytes) +
                     " bytes; the layer is refused",
                 0, ErrorCode::limit_exceeded, "layer_path"};
  }
  if (path.starts_with('/')) return refuse(path, "absolute path");
  std::vector<std::string> comps;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view c = path.substr(i, j - i);
    if (c == "..") return refuse(path, "a \"..\" component would leave the layer");
    if (!c.empty() && c != ".") comps.emplace_back(c);
    i = j + 1;
  }
  if (comps.size() > o_.max_depth) {
    return Error{quoted(path.substr(0, 64)) + ": deeper than " + std::to_string(o_.max_depth) +
                     " directories; the layer is refused",
                 0, ErrorCode::limit_exceeded, "layer_depth"};
  }
  return comps;
}

// The directory holding component n of `comps`, opened beneath the root without following any
// link; missing directories on the way are created (tars need not list every parent).
Result<unique_fd> Unpacker::parent_of(std::string_view entry, const std::vector<std::string>& comps, size_t n) {
  std::string rel;
  for (size_t i = 0; i < n; ++i) rel += (i ? "/" : "") + comps[i];
  unique_fd fd = open_beneath(root_, rel, O_RDONLY | O_DIRECTORY);
  if (fd) return fd;
  if (errno != ENOENT) {
    if (errno == ELOOP || errno == ENOTDIR || errno == EXDEV) {
      return refuse(entry, "\"" + rel + "\" on its path is a symlink or no directory (links are never followed)");
    }
    return failed(entry, "cannot open " + rel);
  }
  unique_fd cur(::dup(root_));
  for (size_t i = 0; i < n; ++i) {
    const char* c = comps[i].c_str();
    unique_fd next = open_beneath(cur.get(), c, O_RDONLY | O_DIRECTORY);
    if (!next && errno == ENOENT) {
      if (auto s = charge(kEntryBytes, entry); !s.ok()) return s.error();
      if (::mkdirat(cur.get(), c, 0755) != 0) return failed(entry, "cannot create directory " + comps[i]);
      ::fchownat(cur.get(), c, o_.id_base, o_.id_base, AT_SYMLINK_NOFOLLOW);
      next = open_beneath(cur.get(), c, O_RDONLY | O_DIRECTORY);
    }
    if (!next) {
      if (errno == ELOOP || errno == ENOTDIR) {
        return refuse(entry,
                      "\"" + comps[i] + "\" on its path is a symlink or no directory (links are never followed)");
      }
      return failed(entry, "cannot open " + comps[i]);
    }
    cur = std::move(next);
  }
  return cur;
}

void Unpacker::set_owner_and_times(archive_entry* e, int parent, const std::string& name) {
  ::fchownat(parent, name.c_str(), map_id(archive_entry_uid(e)), map_id(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW);
  timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  if (archive_entry_mtime_is_set(e)) ts[1] = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
  ::utimensat(parent, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

Status Unpacker::write_file(archive* a, archive_entry* e, std::string_view path, int parent, const std::string& name) {
  int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
  if (size < 0) return refuse(path, "negative size");
  if (auto s = charge(static_cast<uint64_t>(size) + kEntryBytes, path); !s.ok()) return s;
  unique_fd fd(::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return failed(path, "cannot create");
  const void* buf = nullptr;
  size_t len = 0;
  la_int64_t offset = 0;
  for (;;) {
    int r = archive_read_data_block(a, &buf, &len, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) return Error{quoted(path) + ": " + archive_error_string(a), 0, ErrorCode::invalid_input};
    // The tar reader never hands out more than the header declared; kept as a bound regardless.
    if (offset < 0 || offset + static_cast<int64_t>(len) > size) return refuse(path, "more data than its size");
    for (size_t done = 0; done < len;) {
      ssize_t w = ::pwrite(fd.get(), static_cast<const char*>(buf) + done, len - done, offset + done);
      if (w < 0) return failed(path, "cannot write");
      done += static_cast<size_t>(w);
    }
  }
  // A sparse file's trailing hole.
  if (::ftruncate(fd.get(), size) != 0) return failed(path, "cannot size");
  // chown before chmod: chown clears set-id bits anyway, and the mode never carries them here.
  ::fchown(fd.get(), map_id(archive_entry_uid(e)), map_id(archive_entry_gid(e)));
  ::fchmod(fd.get(), archive_entry_perm(e) & 01777);
  timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  if (archive_entry_mtime_is_set(e)) ts[1] = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
  ::futimens(fd.get(), ts);
  return {};
}

Status Unpacker::hardlink(archive_entry* e, std::string_view path, int parent, const std::string& name) {
  std::string_view target = archive_entry_hardlink(e);
  auto comps = split(target);
  if (!comps.ok()) return refuse(path, "hardlink to \"" + std::string(target) + "\", outside the layer");
  if (comps->empty()) return refuse(path, "hardlink to the layer's root");
  std::string rel;
  for (size_t i = 0; i + 1 < comps->size(); ++i) rel += (i ? "/" : "") + (*comps)[i];
  unique_fd tparent = open_beneath(root_, rel, O_RDONLY | O_DIRECTORY);
  struct stat st {};
  if (!tparent || ::fstatat(tparent.get(), comps->back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
      !S_ISREG(st.st_mode)) {
    return refuse(path, "hardlink to \"" + std::string(target) +
                            "\", which is no regular file earlier in this layer (links are never followed)");
  }
  if (auto s = charge(kEntryBytes, path); !s.ok()) return s;
  if (::linkat(tparent.get(), comps->back().c_str(), parent, name.c_str(), 0) != 0) {
    return failed(path, "cannot link to " + std::string(target));
  }
  return {};
}

Status Unpacker::whiteout(archive_entry* e, std::string_view path, int parent, const std::string& base) {
  if (base == kOpaqueMarker) {
    // The executor mounts the overlay as host root, so trusted.* is the namespace overlayfs reads.
    if (::fsetxattr(parent, "trusted.overlay.opaque", "y", 1, 0) != 0) return failed(path, "cannot mark opaque");
    return {};
  }
  std::string name = base.substr(kWhiteoutPrefix.size());
  if (name.empty() || name == "." || name == ".." || name.starts_with(kWhiteoutPrefix)) {
    return refuse(path, "unknown whiteout name");
  }
  struct stat st {};
  // A whiteout only hides what lower layers have: a file this layer already made stays (it
  // hides the lower one by itself).
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return {};
  if (auto s = charge(kEntryBytes, path); !s.ok()) return s;
  if (::mknodat(parent, name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) return failed(path, "cannot make whiteout");
  set_owner_and_times(e, parent, name);
  return {};
}

Status Unpacker::entry(archive* a, archive_entry* e) {
  if (++stats_.entries > o_.max_entries) {
    return Error{"the layer has more than " + std::to_string(o_.max_entries) + " entries; the layer is refused", 0,
                 ErrorCode::limit_exceeded, "layer_entries"};
  }
  const char* raw = archive_entry_pathname(e);
  std::string_view path = raw ? raw : "";
  auto comps = split(path);
  if (!comps.ok()) return comps.error();
  if (comps->empty()) return {};  // "." or "./": the layer's root, which is ours
  // aufs bookkeeping that old Docker layers carry at their top; Docker skips it as well.
  const std::string& top = comps->front();
  if (top == ".wh..wh.plnk" || top == ".wh..wh.aufs" || top == ".wh..wh.orph") {
    ++stats_.skipped;
    return {};
  }
  auto parent_r = parent_of(path, *comps, comps->size() - 1);
  if (!parent_r.ok()) return parent_r.error();
  int parent = parent_r->get();
  const std::string& name = comps->back();
  if (name.starts_with(kWhiteoutPrefix)) return whiteout(e, path, parent, name);

  const char* hard = archive_entry_hardlink(e);
  mode_t type = archive_entry_filetype(e);
  if (!hard && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
    ++stats_.skipped;  // devices, fifos, sockets: an image brings none onto the host's disk
    return {};
  }
  struct stat st {};
  bool exists = ::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (!hard && type == AE_IFDIR) {
    if (exists && !S_ISDIR(st.st_mode) && !remove_at(parent, name.c_str())) return failed(path, "cannot replace");
    if (!exists || !S_ISDIR(st.st_mode)) {
      if (auto s = charge(kEntryBytes, path); !s.ok()) return s;
      if (::mkdirat(parent, name.c_str(), 0700) != 0) return failed(path, "cannot create directory");
    }
    unique_fd d(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) return failed(path, "cannot open directory");
    ::fchown(d.get(), map_id(archive_entry_uid(e)), map_id(archive_entry_gid(e)));
    ::fchmod(d.get(), archive_entry_perm(e) & 01777);
    struct stat dst {};
    if (archive_entry_mtime_is_set(e) && ::fstat(d.get(), &dst) == 0) {
      dir_times_.push_back(DirTime{dst.st_ino, timespec{archive_entry_mtime(e), archive_entry_mtime_nsec(e)}});
    }
    return {};
  }
  if (exists && !remove_at(parent, name.c_str())) return failed(path, "cannot replace");
  if (hard) return hardlink(e, path, parent, name);
  if (type == AE_IFLNK) {
    const char* target = archive_entry_symlink(e);
    if (target == nullptr || *target == '\0') return refuse(path, "symlink without a target");
    if (auto s = charge(std::strlen(target) + kEntryBytes, path); !s.ok()) return s;
    if (::symlinkat(target, parent, name.c_str()) != 0) return failed(path, "cannot create symlink");
    set_owner_and_times(e, parent, name);
    return {};
  }
  return write_file(a, e, path, parent, name);
}

Status Unpacker::finish() {
  if (dir_times_.empty()) return {};
  // A directory listed twice keeps its last entry's time: stable sort, then the last of a run.
  std::stable_sort(dir_times_.begin(), dir_times_.end(), [](const DirTime& a, const DirTime& b) { return a.ino < b.ino; });
  set_dir_times(root_, 0);
  return {};
}

// Depth first, children before their directory (setting a child's time does not touch its
// parent's, but creating did). Every directory is opened beneath its parent's fd without
// following links; the depth is bounded by max_depth, so are the fds held.
void Unpacker::set_dir_times(int dir, size_t depth) {
  if (depth <= o_.max_depth) {
    DIR* dp = ::fdopendir(::dup(dir));
    if (dp != nullptr) {
      while (dirent* e = ::readdir(dp)) {
        if (e->d_type != DT_DIR || std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        unique_fd child(::openat(dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (child) set_dir_times(child.get(), depth + 1);
      }
      ::closedir(dp);
    }
  }
  struct stat st {};
  if (::fstat(dir, &st) != 0) return;
  auto it = std::upper_bound(dir_times_.begin(), dir_times_.end(), st.st_ino,
                             [](ino_t ino, const DirTime& t) { return ino < t.ino; });
  if (it == dir_times_.begin() || std::prev(it)->ino != st.st_ino) return;
  timespec ts[2] = {{0, UTIME_OMIT}, std::prev(it)->mtime};
  ::futimens(dir, ts);
}

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

Status unpack_into(int blob_fd, const std::string& media_type, int root, const UnpackOptions& options,
                   UnpackStats* stats) {
  std::unique_ptr<archive, ArchiveFree> a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  if (::lseek(blob_fd, 0, SEEK_SET) != 0) {
    return Error{std::string("cannot read the layer blob: ") + std::strerror(errno), errno};
  }
  if (archive_read_open_fd(a.get(), blob_fd, 1 << 16) != ARCHIVE_OK) {
    return Error{std::string("the layer is no tar archive (plain, gzip or zstd): ") + archive_error_string(a.get()), 0,
                 ErrorCode::invalid_input};
  }
  if (!media_type.empty()) {
    int want = expected_filter(media_type);
    int got = archive_filter_code(a.get(), 0);
    if (want < 0) {
      return Error{"layer media type \"" + media_type + "\" is no layer type boxcar knows", 0,
                   ErrorCode::invalid_input};
    }
    if (want != got) {
      return Error{"layer media type \"" + media_type + "\" says " + filter_name(want) + " but the blob is " +
                       filter_name(got),
                   0, ErrorCode::invalid_input};
    }
  }
  Unpacker u(root, options);
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      return Error{std::string("the layer's tar is damaged: ") + archive_error_string(a.get()), 0,
                   ErrorCode::invalid_input};
    }
    if (options.stop && options.stop->stopped()) return stop_error(*options.stop, "");
    if (auto s = u.entry(a.get(), e); !s.ok()) return s;
  }
  if (auto s = u.finish(); !s.ok()) return s;
  *stats = u.stats();
  return {};
}

}  // namespace

Result<UnpackStats> unpack_layer(int blob_fd, const std::string& media_type, const std::filesystem::path& dir,
                                 const UnpackOptions& options) {
  if (::mkdir(dir.c_str(), 0755) != 0) {
    return Error{"cannot create " + dir.string() + ": " + std::strerror(errno), errno};
  }
  unique_fd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  UnpackStats stats;
  Status s = root ? Status{} : Status{Error{"cannot open " + dir.string() + ": " + std::strerror(errno), errno}};
  if (s.ok()) {
    ::fchown(root.get(), options.id_base, options.id_base);
    ::fchmod(root.get(), 0755);
    s = unpack_into(blob_fd, media_type, root.get(), options, &stats);
  }
  if (!s.ok()) {
    root.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return s.error();
  }
  return stats;
}

}  // namespace boxcar::images
