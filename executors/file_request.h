// FileRequest / FileReply: the file operations of the sandbox API (Sandbox::file_op), done by a
// helper inside the sandbox as the sandbox's root, with paths resolved in the sandbox's own
// mount namespace (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so a link the sandbox
// planted can never lead a host process out of it. Bytes move through a descriptor the helper
// opened and passed back: the agent reads or writes it, it never opens a sandbox path itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace boxcar::executors {

enum class FileOp {
  stat,          // path -> entry (lstat: a link is reported as a link)
  list,          // path (a directory) -> entries, `recursive`, `hidden`, at most `limit`
  open_read,     // path (a regular file, links followed inside) -> fd O_RDONLY, entry
  open_write,    // path -> fd O_WRONLY of a new temp file beside it (entry.path = its name), or
                 // of path itself with `append`; `parents` makes missing directories
  commit_write,  // to (the temp file from open_write) renamed over path -> created
  mkdir,         // path, `parents`, `mode`
  move,          // path -> to, `overwrite` (rename, or copy + delete across file systems)
  copy,          // path -> to, `recursive`, `overwrite`
  remove,        // path; a directory only with `recursive`
};

struct FileRequest {
  FileOp op = FileOp::stat;
  std::string path;   // absolute inside the sandbox ("/workspace/a.py", "/tmp/x"); callers
                      // have already refused "", NUL, "." and ".." segments and "//"
  std::string to;     // move, copy: the destination; commit_write: open_write's temp name
  bool recursive = false;
  bool parents = false;
  bool overwrite = false;
  bool append = false;
  bool hidden = true;
  uint32_t mode = 0644;  // open_write (the new file), mkdir (callers pass 0755)
  size_t limit = 10000;  // list
};

struct FileEntry {
  enum class Type { file, dir, symlink, other };
  std::string name;  // the last segment
  std::string path;  // absolute inside the sandbox
  Type type = Type::other;
  uint64_t size = 0;
  uint32_t mode = 0;    // permission bits
  int64_t mtime_ms = 0;
  std::string target;  // symlink: where it points (as text; never followed by the host)
};

struct FileReply {
  // 0, or the errno of what failed inside (ENOENT, EISDIR, ENOTDIR, EEXIST, ENOTEMPTY, EROFS,
  // EACCES, ENOSPC, EDQUOT, ELOOP, EXDEV...): the API maps it to its status and code.
  int err = 0;
  std::string message;  // what failed, with the sandbox path ("mkdir /workspace/a: File exists")
  FileEntry entry;
  std::vector<FileEntry> entries;
  bool truncated = false;  // list: more than `limit`
  unique_fd fd;            // open_read, open_write
  bool created = false;    // commit_write: path did not exist before
};

}  // namespace boxcar::executors
