#include "agent/cache_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "agent/cache_tree.h"
#include "base/link_target.h"
#include "base/safe_relative_path.h"
#include "base/unique_fd.h"

namespace boxcar::agent {
namespace {

struct ArchiveFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

}  // namespace

Status pack_cache_entry(const std::filesystem::path& entry, int out_fd) {
  std::unique_ptr<archive, ArchiveFree> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  if (archive_write_open_fd(a.get(), out_fd) != ARCHIVE_OK) {
    return Error{std::string("cannot write the cache tar: ") + archive_error_string(a.get())};
  }
  unique_fd root(::open(entry.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root) return Error{"cannot open " + entry.string(), errno};
  std::vector<char> buffer(1 << 16);
  for (const char* part : {"workspace", "home"}) {
    Status s = walk_cache_tree(root.get(), part, [&](const std::string& path, int dirfd, const char* name,
                                                     const struct stat& st, bool&) -> Status {
      std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
      archive_entry_set_pathname(e.get(), path.c_str());
      archive_entry_set_mode(e.get(), st.st_mode & (S_IFMT | 0777));
      archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
      unique_fd file;
      if (S_ISREG(st.st_mode)) {
        file.reset(::openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!file) return Error{"cannot open " + path, errno};
        archive_entry_set_size(e.get(), st.st_size);
      } else if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = ::readlinkat(dirfd, name, target, sizeof target - 1);
        if (n < 0) return Error{"cannot read the link " + path, errno};
        target[n] = '\0';
        archive_entry_set_symlink(e.get(), target);
      } else if (!S_ISDIR(st.st_mode)) {
        return Status{};
      }
      if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) {
        return Error{std::string("cannot write the cache tar: ") + archive_error_string(a.get())};
      }
      int64_t left = S_ISREG(st.st_mode) ? st.st_size : 0;
      while (left > 0) {
        ssize_t n = ::read(file.get(), buffer.data(), std::min<size_t>(buffer.size(), left));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return Error{"cannot read " + path + " (it changed while packed)", errno};
        if (archive_write_data(a.get(), buffer.data(), static_cast<size_t>(n)) < 0) {
          return Error{std::string("cannot write the cache tar: ") + archive_error_string(a.get())};
        }
        left -= n;
      }
      return Status{};
    });
    if (!s) return s;
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return Error{std::string("cannot finish the cache tar: ") + archive_error_string(a.get())};
  }
  return Status{};
}

Status check_cache_tar(int fd) {
  struct ReadFree {
    void operator()(archive* a) const { archive_read_free(a); }
  };
  std::unique_ptr<archive, ReadFree> a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (::lseek(fd, 0, SEEK_SET) != 0) return Error{"cannot read the cache tar", errno};
  if (archive_read_open_fd(a.get(), fd, 1 << 16) != ARCHIVE_OK) {
    return Error{std::string("cannot read the cache tar: ") + archive_error_string(a.get())};
  }
  archive_entry* e = nullptr;
  int r;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    const char* name = archive_entry_pathname(e);
    std::string_view path = name ? name : "";
    size_t start = 0;
    while (start <= path.size()) {
      size_t slash = path.find('/', start);
      if (slash == std::string_view::npos) slash = path.size();
      if (path.substr(start, slash - start).starts_with(".wh.")) {
        return Error{"it holds \"" + std::string(path) + "\": a whiteout name, which a cache never has"};
      }
      start = slash + 1;
    }
    // A link may only lead within its own part (workspace/ or home/), as a save keeps them:
    // the parts become lower layers of a step, and a link out (`home/.cache -> /root`) would
    // have the agent mount what it names into the step.
    if (archive_entry_filetype(e) == AE_IFLNK) {
      const char* target = archive_entry_symlink(e);
      size_t part = path.find('/');
      std::string_view rel = part == std::string_view::npos ? std::string_view{} : path.substr(part + 1);
      while (rel.ends_with('/')) rel.remove_suffix(1);
      if (rel.empty() || !safe_relative_path(rel) || !target || !lexical_link_target(rel, target)) {
        return Error{"it holds the link \"" + std::string(path) + "\" -> \"" + (target ? target : "") +
                     "\", which leads out of its part of the entry"};
      }
    }
  }
  if (r != ARCHIVE_EOF) return Error{std::string("cannot read the cache tar: ") + archive_error_string(a.get())};
  if (::lseek(fd, 0, SEEK_SET) != 0) return Error{"cannot read the cache tar", errno};
  return Status{};
}

}  // namespace boxcar::agent
