// A sandbox's files (raw bytes streamed both ways, and the fs operations) and its exposed
// ports: docs/sandboxes.md "Files" and "Ports". Handles bound to one sandbox.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "base/result.h"
#include "client/api_connection.h"

namespace boxcar::client {

// Told the bytes moved so far and the total (0 when unknown).
using Progress = std::function<void(uint64_t done, uint64_t total)>;

struct FileEntry {
  std::string name, path, type;  // type: file | dir | symlink | other
  uint64_t size = 0;
  uint32_t mode = 0;
  std::string mtime, target;
  boost::json::object raw;
};

struct Listing {
  std::vector<FileEntry> entries;
  bool truncated = false;
  boost::json::object raw;
};

// One event of GET /fs/watch: watching, change {kind, path, is_dir}, overflow {dropped}, end.
struct WatchEvent {
  std::string event;
  std::string kind, path;  // change: create|modify|delete|move_from|move_to|attrib, absolute
  bool is_dir = false;
  std::optional<int64_t> dropped;  // overflow: events lost (none when the kernel's queue lost them)
  boost::json::object raw;
};

struct WatchOptions {
  bool recursive = false;
  std::string include, exclude;  // globs on the path below the watched one
};

class Files {
 public:
  Files(std::shared_ptr<ApiConnection> api, std::string sandbox)
      : api_(std::move(api)), sandbox_(std::move(sandbox)) {}

  // The file's bytes, handed to `on_data` as they arrive (never held whole here).
  Status read_to(const std::string& path, const std::function<bool(std::string_view)>& on_data);
  // The whole file, for small ones.
  Result<std::string> read(const std::string& path);
  // Writes `content` (atomically on the server: a temporary file renamed); `mkdirs` makes the
  // missing parents.
  Status write(const std::string& path, std::string content, bool mkdirs = true);
  // Streams the local file `local` to `path`, `progress` told how far it got.
  Status upload(const std::string& local, const std::string& path, const Progress& progress = {},
                bool mkdirs = true);
  // Streams `path` into the local file `local` (through a temporary file beside it).
  Status download(const std::string& path, const std::string& local, const Progress& progress = {});

  Result<Listing> list(const std::string& path, bool recursive = false, bool hidden = true);
  Result<FileEntry> stat(const std::string& path);
  // {exists, type}: type "" when it does not exist.
  Result<std::string> exists(const std::string& path);
  Status mkdir(const std::string& path, bool parents = false);
  Status move(const std::string& from, const std::string& to, bool overwrite = false);
  Status copy(const std::string& from, const std::string& to, bool recursive = false);
  // A directory needs `recursive`.
  Status remove(const std::string& path, bool recursive = false);
  // Streams the changes under the directory `path` to `on_event` (client/sandbox_watch.cc) until
  // the callback returns false (the server then ends the watch), the directory goes (`end`),
  // or the connection breaks (an Error).
  Status watch(const std::string& path, const WatchOptions& options,
               const std::function<bool(const WatchEvent&)>& on_event);

 private:
  std::string raw_path(const std::string& path) const;
  std::shared_ptr<ApiConnection> api_;
  std::string sandbox_;
};

struct PortInfo {
  int port = 0;
  std::string name, url, path_url;
  boost::json::object raw;
};

class Ports {
 public:
  Ports(std::shared_ptr<ApiConnection> api, std::string sandbox)
      : api_(std::move(api)), sandbox_(std::move(sandbox)) {}
  // Publishes the port through the agent's preview proxy: its URLs.
  Result<PortInfo> expose(int port, const std::string& name = {});
  Status unexpose(int port);
  Result<std::vector<PortInfo>> list();

 private:
  std::shared_ptr<ApiConnection> api_;
  std::string sandbox_;
};

// "/workspace/a b.py" -> "workspace/a%20b.py": the raw files route's path part (every segment
// percent-encoded, the leading '/' dropped since the route supplies it). A relative path is
// kept relative (the server resolves it against /workspace).
std::string encode_file_path(const std::string& path);

}  // namespace boxcar::client
