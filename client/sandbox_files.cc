#include "client/sandbox_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <boost/json.hpp>

#include "base/random_token.h"
#include "base/url.h"
#include "client/answer_fields.h"
#include "client/sandbox_client.h"

namespace boxcar::client {

namespace json = boost::json;

std::string encode_file_path(const std::string& path) {
  // A relative path is the session's: under /workspace (the raw route's path is absolute).
  std::string absolute = path.empty() || path.front() != '/' ? "/workspace/" + path : path;
  return percent_encode(std::string_view(absolute).substr(1), /*keep_slash=*/true);
}

std::string Files::raw_path(const std::string& path) const {
  return sandbox_path(sandbox_) + "/files/" + encode_file_path(path);
}

namespace {

std::string query_value(const std::string& s) { return percent_encode(s, false); }

Result<FileEntry> entry_of(const json::value& v) {
  if (!v.is_object()) return Error{"the server's file entry is not a JSON object", 0, ErrorCode::unavailable};
  const auto& o = v.as_object();
  FileEntry e;
  e.name = text_field(o, "name");
  e.path = text_field(o, "path");
  e.type = text_field(o, "type");
  e.size = static_cast<uint64_t>(std::max<int64_t>(0, int_field(o, "size").value_or(0)));
  e.mode = static_cast<uint32_t>(int_field(o, "mode").value_or(0));
  e.mtime = text_field(o, "mtime");
  e.target = text_field(o, "target");
  e.raw = o;
  return e;
}

Status done(const Result<json::value>& answer) {
  if (!answer) return answer.error();
  return {};
}

}  // namespace

Status Files::read_to(const std::string& path, const std::function<bool(std::string_view)>& on_data) {
  return api_->stream("GET", raw_path(path), "", on_data);
}

Result<std::string> Files::read(const std::string& path) {
  return api_->call("GET", raw_path(path));
}

Status Files::write(const std::string& path, std::string content, bool mkdirs) {
  auto answer = api_->call("PUT", raw_path(path) + (mkdirs ? "?mkdirs=1" : ""), std::move(content),
                           "application/octet-stream");
  if (!answer) return answer.error();
  return {};
}

Status Files::upload(const std::string& local, const std::string& path, const Progress& progress,
                     bool mkdirs) {
  int fd = ::open(local.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error{"cannot open " + local + ": " + std::strerror(errno), errno,
                 errno == ENOENT ? ErrorCode::not_found : ErrorCode::invalid_input};
  }
  auto file = std::make_shared<const unique_fd>(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error{local + " is not a regular file", 0, ErrorCode::invalid_input};
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  std::function<void(uint64_t)> sent;
  if (progress) sent = [&progress, size](uint64_t n) { progress(n, size); };
  auto answer = api_->upload("PUT", raw_path(path) + (mkdirs ? "?mkdirs=1" : ""), file, size, sent);
  if (!answer) return answer.error();
  return {};
}

Status Files::download(const std::string& path, const std::string& local, const Progress& progress) {
  uint64_t total = 0;
  if (progress) {
    auto st = stat(path);
    if (!st) return st.error();
    total = st->size;
  }
  // Into a temporary file beside the target, renamed when whole: an interrupted copy never
  // leaves a truncated file under the name asked for.
  std::filesystem::path dest(local);
  auto suffix = random_token(8);
  if (!suffix) return suffix.error();
  std::filesystem::path tmp = dest.parent_path() / ("." + dest.filename().string() + ".boxcar-" + *suffix);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Error{"cannot create " + tmp.string() + ": " + std::strerror(errno), errno, ErrorCode::invalid_input};
  unique_fd out(fd);
  uint64_t got = 0;
  std::optional<Error> write_error;
  Status st = read_to(path, [&](std::string_view piece) {
    while (!piece.empty()) {
      ssize_t n = ::write(out.get(), piece.data(), piece.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        write_error = Error{"cannot write " + local + ": " + std::strerror(errno), errno, ErrorCode::internal};
        return false;
      }
      piece.remove_prefix(static_cast<size_t>(n));
      got += static_cast<uint64_t>(n);
    }
    if (progress) progress(got, total);
    return true;
  });
  if (!st || write_error) {
    ::unlink(tmp.c_str());
    return write_error ? *write_error : st.error();
  }
  if (::rename(tmp.c_str(), dest.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Error{"cannot rename to " + local + ": " + std::strerror(err), err, ErrorCode::internal};
  }
  return {};
}

Result<Listing> Files::list(const std::string& path, bool recursive, bool hidden) {
  auto answer = api_->call_json("GET", sandbox_path(sandbox_) + "/fs/list?path=" + query_value(path) +
                                           (recursive ? "&recursive=1" : "") + (hidden ? "&hidden=1" : "&hidden=0"));
  if (!answer) return answer.error();
  const json::array* items = nullptr;
  if (answer->is_object()) {
    if (auto* a = answer->as_object().if_contains("entries"); a && a->is_array()) items = &a->as_array();
  }
  if (!items) return Error{"the server's listing has no \"entries\" array", 0, ErrorCode::unavailable};
  Listing l;
  for (const auto& item : *items) {
    auto e = entry_of(item);
    if (!e) return e.error();
    l.entries.push_back(std::move(*e));
  }
  l.truncated = bool_field(answer->as_object(), "truncated");
  l.raw = answer->as_object();
  return l;
}

Result<FileEntry> Files::stat(const std::string& path) {
  auto answer = api_->call_json("GET", sandbox_path(sandbox_) + "/fs/stat?path=" + query_value(path));
  if (!answer) return answer.error();
  return entry_of(*answer);
}

Result<std::string> Files::exists(const std::string& path) {
  auto answer = api_->call_json("GET", sandbox_path(sandbox_) + "/fs/exists?path=" + query_value(path));
  if (!answer) return answer.error();
  if (!answer->is_object()) return Error{"the server's answer is not a JSON object", 0, ErrorCode::unavailable};
  if (!bool_field(answer->as_object(), "exists")) return std::string();
  std::string type = text_field(answer->as_object(), "type");
  return type.empty() ? std::string("other") : type;
}

Status Files::mkdir(const std::string& path, bool parents) {
  return done(api_->call_json("POST", sandbox_path(sandbox_) + "/fs/mkdir",
                              json::object{{"path", path}, {"parents", parents}}));
}

Status Files::move(const std::string& from, const std::string& to, bool overwrite) {
  return done(api_->call_json("POST", sandbox_path(sandbox_) + "/fs/move",
                              json::object{{"from", from}, {"to", to}, {"overwrite", overwrite}}));
}

Status Files::copy(const std::string& from, const std::string& to, bool recursive) {
  return done(api_->call_json("POST", sandbox_path(sandbox_) + "/fs/copy",
                              json::object{{"from", from}, {"to", to}, {"recursive", recursive}}));
}

Status Files::remove(const std::string& path, bool recursive) {
  auto answer = api_->call("DELETE", raw_path(path) + (recursive ? "?recursive=1" : ""));
  if (!answer) return answer.error();
  return {};
}

namespace {

Result<PortInfo> port_of(const json::value& v) {
  if (!v.is_object()) return Error{"the server's port is not a JSON object", 0, ErrorCode::unavailable};
  const auto& o = v.as_object();
  PortInfo p;
  p.port = static_cast<int>(int_field(o, "port").value_or(0));
  p.name = text_field(o, "name");
  p.url = text_field(o, "url");
  p.path_url = text_field(o, "path_url");
  p.raw = o;
  return p;
}

}  // namespace

Result<PortInfo> Ports::expose(int port, const std::string& name) {
  json::object body{{"port", port}};
  if (!name.empty()) body["name"] = name;
  auto answer = api_->call_json("POST", sandbox_path(sandbox_) + "/ports", body);
  if (!answer) return answer.error();
  return port_of(*answer);
}

Status Ports::unexpose(int port) {
  auto answer = api_->call("DELETE", sandbox_path(sandbox_) + "/ports/" + std::to_string(port));
  if (!answer) return answer.error();
  return {};
}

Result<std::vector<PortInfo>> Ports::list() {
  auto answer = api_->call_json("GET", sandbox_path(sandbox_) + "/ports");
  if (!answer) return answer.error();
  const json::array* items = nullptr;
  if (answer->is_array()) items = &answer->as_array();
  if (answer->is_object()) {
    if (auto* a = answer->as_object().if_contains("ports"); a && a->is_array()) items = &a->as_array();
  }
  if (!items) return Error{"the server's port list has no \"ports\" array", 0, ErrorCode::unavailable};
  std::vector<PortInfo> out;
  for (const auto& item : *items) {
    auto p = port_of(item);
    if (!p) return p.error();
    out.push_back(std::move(*p));
  }
  return out;
}

}  // namespace boxcar::client
