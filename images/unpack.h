// unpack_layer: one image layer blob (a tar, plain, gzip or zstd) -> a directory an overlayfs
// lower can be, written as if by a hostile author: no entry lands outside the directory, no link
// is followed, no setuid/setgid bit and no host-root owner reaches the host's disk, and the
// sizes are bounded so a small blob cannot fill the disk.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

#include "base/result.h"
#include "images/pull_stop.h"

namespace boxcar::images {

// What one entry (a directory, a file's inode, a link, a whiteout) costs against the size cap
// beyond its content: a layer of a million empty files is not free on the disk.
inline constexpr uint64_t kEntryBytes = 4096;

struct UnpackOptions {
  // An image's uid/gid N is written as id_base + N; N >= id_count as id_base + 65534 ("nobody",
  // or the range's last id when the range is smaller).
  uid_t id_base = 100000;
  uid_t id_count = 65536;
  // Bounds: bytes of file content plus kEntryBytes per entry (the store passes its size cap),
  // entries, one path's length and depth. Past one, the layer is refused with an Error
  // (limit_exceeded).
  uint64_t max_bytes = 20ull << 30;
  // When set, max_bytes bounds what every layer of one image adds here (the layers of a pull
  // unpack in parallel and share it), not this layer alone.
  std::atomic<uint64_t>* image_bytes = nullptr;
  // Checked between entries: a cancelled or overdue pull stops unpacking (stop_error()).
  const PullStop* stop = nullptr;
  uint64_t max_entries = 1'000'000;
  size_t max_path_bytes = 4096;
  size_t max_depth = 256;
};

struct UnpackStats {
  uint64_t bytes = 0;    // file contents, link texts and kEntryBytes per entry: the layer's size for accounting
  uint64_t entries = 0;  // entries read
  uint64_t skipped = 0;  // device nodes, fifos and sockets, which a layer may not bring
};

// Reads the blob from `blob_fd` (from offset 0) and unpacks it into `dir`, which must not exist
// yet and is created (0755, owned by id_base). The compression is detected from the content;
// `media_type` (OCI or Docker layer types; "" skips the check) must agree with it. Rules:
//   - absolute paths and `..` components refuse the layer, naming the entry;
//   - every entry is created beneath `dir` with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS):
//     an entry under a symlink (`a -> /etc`, then `a/passwd`) refuses the layer;
//   - symlinks are made with their target text as it is; hardlinks only to a regular file
//     already unpacked in this layer;
//   - `.wh.NAME` becomes the overlayfs whiteout NAME (a 0/0 character device), `DIR/.wh..wh..opq`
//     sets trusted.overlay.opaque=y on DIR; other `.wh.` names refuse the layer;
//   - device nodes, fifos and sockets are skipped (counted); xattrs are not copied;
//   - owners mapped as UnpackOptions says, modes & 01777 (setuid/setgid always dropped), mtimes
//     kept; an entry naming an existing path replaces it (a directory over one merges).
// On any Error `dir` is removed again.
Result<UnpackStats> unpack_layer(int blob_fd, const std::string& media_type, const std::filesystem::path& dir,
                                 const UnpackOptions& options);

}  // namespace boxcar::images
