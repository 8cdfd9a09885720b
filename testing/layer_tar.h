// LayerTar (tests only): builds an image layer blob in memory with libarchive's write API
// (pax tar, plain, gzip or zstd), entries of any kind a hostile image could hold, and hands it
// out as bytes or as a memfd. Header-only; its users link LibArchive::LibArchive.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "base/unique_fd.h"

namespace boxcar::testing {

class LayerTar {
 public:
  enum class Compression { none, gzip, zstd };

  explicit LayerTar(Compression c = Compression::none) : a_(archive_write_new()) {
    archive_write_set_format_pax_restricted(a_);
    if (c == Compression::gzip) archive_write_add_filter_gzip(a_);
    if (c == Compression::zstd) archive_write_add_filter_zstd(a_);
    archive_write_set_bytes_in_last_block(a_, 1);
    if (archive_write_open(a_, &out_, nullptr, &LayerTar::append, nullptr) != ARCHIVE_OK) {
      throw std::runtime_error(archive_error_string(a_));
    }
  }
  ~LayerTar() {
    archive_entry_free(e_);
    archive_write_free(a_);
  }
  LayerTar(const LayerTar&) = delete;
  LayerTar& operator=(const LayerTar&) = delete;

  LayerTar& file(const std::string& path, const std::string& data, mode_t mode = 0644, int64_t uid = 0,
                 int64_t gid = 0) {
    archive_entry* e = entry(path, AE_IFREG, mode, uid, gid);
    archive_entry_set_size(e, static_cast<int64_t>(data.size()));
    put(e);
    archive_write_data(a_, data.data(), data.size());
    return *this;
  }
  // `size` zero bytes, streamed: with gzip, a small blob that unpacks to a lot.
  LayerTar& zeros(const std::string& path, uint64_t size) {
    archive_entry* e = entry(path, AE_IFREG, 0644, 0, 0);
    archive_entry_set_size(e, static_cast<int64_t>(size));
    put(e);
    std::string chunk(1 << 20, '\0');
    for (uint64_t done = 0; done < size;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - done));
      archive_write_data(a_, chunk.data(), n);
      done += n;
    }
    return *this;
  }
  LayerTar& dir(const std::string& path, mode_t mode = 0755, int64_t uid = 0, int64_t gid = 0) {
    put(entry(path, AE_IFDIR, mode, uid, gid));
    return *this;
  }
  LayerTar& symlink(const std::string& path, const std::string& target) {
    archive_entry* e = entry(path, AE_IFLNK, 0777, 0, 0);
    archive_entry_set_symlink(e, target.c_str());
    put(e);
    return *this;
  }
  LayerTar& hardlink(const std::string& path, const std::string& target) {
    archive_entry* e = entry(path, AE_IFREG, 0644, 0, 0);
    archive_entry_set_hardlink(e, target.c_str());
    archive_entry_set_size(e, 0);
    put(e);
    return *this;
  }
  LayerTar& chardev(const std::string& path, unsigned major, unsigned minor) {
    archive_entry* e = entry(path, AE_IFCHR, 0666, 0, 0);
    archive_entry_set_rdevmajor(e, major);
    archive_entry_set_rdevminor(e, minor);
    put(e);
    return *this;
  }
  LayerTar& fifo(const std::string& path) {
    put(entry(path, AE_IFIFO, 0644, 0, 0));
    return *this;
  }

  // The finished blob; the builder takes no more entries afterwards.
  const std::string& bytes() {
    if (!closed_) {
      archive_write_close(a_);
      closed_ = true;
    }
    return out_;
  }
  // The finished blob in a memfd, its offset at the end (as a download leaves it).
  unique_fd fd() {
    const std::string& b = bytes();
    unique_fd f(::memfd_create("layer", MFD_CLOEXEC));
    if (::write(f.get(), b.data(), b.size()) != static_cast<ssize_t>(b.size())) throw std::runtime_error("memfd");
    return f;
  }

 private:
  static la_ssize_t append(archive*, void* self, const void* buf, size_t n) {
    static_cast<std::string*>(self)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  archive_entry* entry(const std::string& path, mode_t type, mode_t mode, int64_t uid, int64_t gid) {
    archive_entry_clear(e_);
    archive_entry_set_pathname(e_, path.c_str());
    archive_entry_set_filetype(e_, type);
    archive_entry_set_perm(e_, mode);
    archive_entry_set_uid(e_, uid);
    archive_entry_set_gid(e_, gid);
    archive_entry_set_mtime(e_, 1'600'000'000, 0);
    return e_;
  }
  void put(archive_entry* e) {
    if (archive_write_header(a_, e) != ARCHIVE_OK) throw std::runtime_error(archive_error_string(a_));
  }

  archive* a_;
  archive_entry* e_ = archive_entry_new();
  std::string out_;
  bool closed_ = false;
};

}  // namespace boxcar::testing
