// The file routes of the sandbox API (SANDBOXES.md §2.5): raw files (GET with Range and ETag,
// HEAD, PUT through a spooled body, DELETE) and the JSON operations (/fs/mkdir, move, copy,
// list, stat, exists). Every operation is a Sandbox::file_op: done inside the sandbox by its file
// helper; the agent only reads and writes the descriptors it passes back.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "base/rfc3339.h"
#include "executors/file_request.h"
#include "http/byte_range.h"
#include "protocol/json_reader.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/sandbox_host.h"
#include "sandboxes/query_flag.h"
#include "sandboxes/sandbox_path.h"

namespace boxcar::sandboxes {

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using executors::FileEntry;
using executors::FileOp;
using executors::FileReply;
using executors::FileRequest;
using server::HttpRequest;
using server::HttpResponse;
using server::Responder;
using Reply = std::shared_ptr<Responder>;

constexpr const char* kPrefix = "/api/v1/sandboxes/{id}";
// A listing's default and largest `limit`.
constexpr int64_t kListDefault = 1000, kListMax = 10000;
// A PUT's body at most, whatever the sandbox: the largest disk a sandbox can have (§1.5).
constexpr uint64_t kMaxUpload = 64ull << 30;
// What an upload copies into the sandbox per turn of the io_context.
constexpr size_t kCopyStep = 8u << 20;

// The answer to a helper's errno (SANDBOXES.md §2.0), with its message and how to go on.
HttpResponse file_error(int err, const std::string& message, std::string_view field = {}) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return HttpResponse::error_code(404, "file_not_found", message + ": check the path (GET /fs/list shows what is there)", field);
    case EISDIR:
      return HttpResponse::error_code(400, "is_directory", message + ": a directory (list it with GET /fs/list)", field);
    case EROFS:
      return HttpResponse::error_code(403, "read_only", message + ": that file system is read-only in the sandbox; write under /workspace or /tmp", field);
    case EACCES:
    case EPERM:
      return HttpResponse::error_code(403, "permission_denied", message, field);
    case EEXIST:
    case ENOTEMPTY:
      return HttpResponse::error_code(409, "exists", message + " (pass overwrite or recursive to replace it)", field);
    case EDQUOT:
    case ENOSPC:
      return HttpResponse::error_code(507, "quota_exceeded", message + ": the sandbox's disk is full; remove files or create it with a larger resources.disk", field);
    case ELOOP:
      return HttpResponse::error_code(400, "bad_path", message + " (a link loop, or a link through /proc, which is never followed)", field);
    case EBUSY:
      return HttpResponse::error_code(409, "busy", message, field);
    case E2BIG:
    case EFBIG:
      return HttpResponse::error_code(413, "too_large", message, field);
    case EINVAL:
    case ENAMETOOLONG:
      return HttpResponse::error_code(400, "bad_request", message, field);
    case ESRCH:
    case ETIMEDOUT:
      return HttpResponse::error_code(503, "sandbox_unavailable", message + "; try again", field);
    default:
      return HttpResponse::error_code(500, "internal", message, field);
  }
}

HttpResponse failed(const Result<FileReply>& r, std::string_view field = {}) {
  if (!r) return file_error(r.error().err ? r.error().err : EIO, r.error().message, field);
  return file_error(r->err, r->message, field);
}

bool failed_op(const Result<FileReply>& r) { return !r || r->err != 0; }

// Whether a sandbox path is in /workspace, the part its disk quota covers (/tmp is a tmpfs with
// its own size, resources.tmp_bytes, which the kernel enforces: ENOSPC is 507 as well). Only a
// first look, to refuse early: the helper follows the sandbox's links, so /tmp/ws/f may land in
// /workspace; what counts is where the descriptor it opened is (lands_in_workspace).
bool in_workspace(std::string_view path) {
  std::string_view ws = kDefaultCwd;
  return path.substr(0, ws.size()) == ws && (path.size() == ws.size() || path[ws.size()] == '/');
}

// Whether `fd`, opened by the helper, is on the file system of the sandbox's /workspace (the
// host's workspace directory, bind-mounted in): the quota covers where the bytes land, whatever
// path and links led there. Unknown (fstat failed, sandbox gone) counts as the workspace.
bool lands_in_workspace(SandboxHost& host, const std::string& id, int fd) {
  ApiSandbox* sb = host.find(id);
  struct stat of_fd, of_ws;
  if (sb == nullptr || ::fstat(fd, &of_fd) != 0 || ::stat(sb->workspace_dir().c_str(), &of_ws) != 0) return true;
  return of_fd.st_dev == of_ws.st_dev;
}

const char* type_name(FileEntry::Type t) {
  switch (t) {
    case FileEntry::Type::file: return "file";
    case FileEntry::Type::dir: return "dir";
    case FileEntry::Type::symlink: return "symlink";
    default: return "other";
  }
}

json::object entry_json(const FileEntry& e) {
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", e.mode & 07777);
  json::object o{{"name", e.name}, {"path", e.path}, {"type", type_name(e.type)}, {"size", e.size},
                 {"mode", mode}, {"mtime", format_rfc3339(e.mtime_ms)}};
  if (e.type == FileEntry::Type::symlink) o["target"] = e.target;
  return o;
}

// An octal permission mode ("0644", "755"), at most 0777.
Result<uint32_t> octal_mode(const std::string& text, uint32_t fallback) {
  if (text.empty()) return fallback;
  char* end = nullptr;
  unsigned long v = std::strtoul(text.c_str(), &end, 8);
  if (*end != 0 || text.size() > 4 || v > 0777) {
    return Error{"mode \"" + text + "\": expected octal permission bits like 0644 (at most 0777)"};
  }
  return static_cast<uint32_t>(v);
}

// The sandbox of a request that passed resolve(), by id, when it is still running: the answer
// of an earlier file_op may come after it was removed.
executors::Sandbox* still_running(SandboxHost& host, const std::string& id) {
  ApiSandbox* sb = host.find(id);
  return sb && sb->running() ? &sb->sandbox() : nullptr;
}

std::string etag_of(const FileEntry& e) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "\"%llx-%llx\"", static_cast<unsigned long long>(e.size),
                static_cast<unsigned long long>(e.mtime_ms));
  return buf;
}

// GET /files/{path...}: the file, streamed from the descriptor the helper opened.
void serve_file(const HttpRequest& req, Reply res, const FileReply& opened, unique_fd fd) {
  const FileEntry& e = opened.entry;
  const std::string etag = etag_of(e);
  if (req.header("If-None-Match") == etag) {
    HttpResponse r = HttpResponse::text(304, "");
    r.headers.emplace_back("ETag", etag);
    return res->reply(std::move(r));
  }
  HttpResponse head;
  head.content_type = server::content_type_for(e.path);
  head.headers.emplace_back("ETag", etag);
  head.headers.emplace_back("Accept-Ranges", "bytes");
  head.headers.emplace_back("Last-Modified-Ms", std::to_string(e.mtime_ms));
  // The size now, from the descriptor itself: the helper's entry may be older.
  struct stat st;
  uint64_t size = ::fstat(fd.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : e.size;
  std::string range_header = req.header("Range");
  if (std::string if_range = req.header("If-Range"); !if_range.empty() && if_range != etag) range_header.clear();
  server::ByteRange range = server::parse_byte_range(range_header, size);
  if (range.kind == server::ByteRange::unsatisfiable) {
    HttpResponse r = HttpResponse::error_code(416, "bad_request", "range not satisfiable: the file has " +
                                                                       std::to_string(size) + " bytes", "Range");
    r.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
    return res->reply(std::move(r));
  }
  if (range.kind == server::ByteRange::part) {
    head.status = 206;
    head.headers.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                   std::to_string(range.last) + "/" + std::to_string(size));
    return res->reply_fd(std::move(head), fd.release(), range.first, range.last - range.first + 1);
  }
  res->reply_fd(std::move(head), fd.release(), 0, size);
}

// The path of /files/{path...}: the capture is the absolute path without its first slash.
Result<std::string> raw_path(const HttpRequest& req) {
  auto it = req.params.find("path");
  return sandbox_path("/" + (it == req.params.end() ? std::string() : it->second));
}

// A path from a query parameter or body field, or the 400 answer naming it.
bool checked_path(const std::string& raw, const std::string& field, std::string& out, Reply& res) {
  auto p = sandbox_path(raw);
  if (!p) {
    res->reply(HttpResponse::error_code(400, "bad_path", field + ": " + p.error().message, field));
    return false;
  }
  out = *p;
  return true;
}

// An upload copied from the spooled body into the helper's temp file, a piece per turn of the
// io_context, then committed.
struct Upload : std::enable_shared_from_this<Upload> {
  SandboxHost& host;
  std::string id;
  std::string path;
  bool append = false;
  Reply res;
  fs::path spooled;
  unique_fd in, out;
  std::string temp;  // open_write's temp file, in the sandbox
  uint64_t size = 0;
  bool counted = false;  // the opened file is in /workspace: the quota covers it

  Upload(SandboxHost& h) : host(h) {}
  ~Upload() {
    std::error_code ec;
    if (!spooled.empty()) fs::remove(spooled, ec);
  }

  void step() {
    ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, kCopyStep, 0);
    // EBADF: an O_APPEND target, which copy_file_range refuses.
    if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == EBADF)) n = read_write();
    if (n < 0) return fail(errno, "write " + path);
    if (n > 0) {
      boost::asio::post(host.io(), [self = shared_from_this()] { self->step(); });
      return;
    }
    out.reset();
    if (append) return answer(false);
    executors::Sandbox* sb = still_running(host, id);
    if (!sb) return res->reply(HttpResponse::error_code(503, "sandbox_unavailable", "the sandbox stopped during the upload"));
    FileRequest commit;
    commit.op = FileOp::commit_write;
    commit.path = path;
    commit.to = temp;
    sb->file_op(std::move(commit), [self = shared_from_this()](Result<FileReply> r) {
      if (failed_op(r)) return self->res->reply(failed(r));
      self->temp.clear();
      self->answer(r->created);
    });
  }

  // copy_file_range refused (another file system on an older kernel): read and write.
  ssize_t read_write() {
    char buf[1 << 16];
    ssize_t total = 0;
    while (total < static_cast<ssize_t>(kCopyStep)) {
      ssize_t n = ::read(in.get(), buf, sizeof buf);
      if (n < 0) return -1;
      if (n == 0) break;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = ::write(out.get(), buf + off, static_cast<size_t>(n - off));
        if (w < 0) return -1;
        off += w;
      }
      total += n;
    }
    return total;
  }

  // The helper opened the file: one in /workspace (by where it is, not by its path) gets room
  // by the quota before a byte is copied, measured again when short (as put_file does).
  void opened() {
    counted = lands_in_workspace(host, id, out.get());
    ApiSandbox* sb = host.find(id);
    if (!counted || (sb && sb->disk().fits(size))) return step();
    host.measure_disk(id, [self = shared_from_this()] {
      ApiSandbox* now = self->host.find(self->id);
      if (now == nullptr) return self->abort(HttpResponse::error_code(404, "sandbox_not_found", "the sandbox was removed"));
      if (!now->disk().fits(self->size)) return self->abort(now->disk().refusal("PUT " + self->path, self->size));
      self->step();
    });
  }

  void answer(bool created) {
    if (ApiSandbox* sb = host.find(id); sb && counted) sb->disk().wrote(size);
    res->reply(HttpResponse::json(created ? 201 : 200, json::object{{"path", path}, {"size", size}}));
  }

  void fail(int err, const std::string& what) { abort(file_error(err, what + ": " + std::strerror(err))); }

  void abort(HttpResponse answer) {
    out.reset();
    // The temp file the helper made is of no use now; it is gone before the answer, so a client
    // that looks next never sees it (nor finds its space still taken).
    executors::Sandbox* sb = still_running(host, id);
    if (!sb || temp.empty()) return res->reply(std::move(answer));
    FileRequest rm;
    rm.op = FileOp::remove;
    rm.path = fs::path(path).parent_path().string() + "/" + std::exchange(temp, {});
    sb->file_op(std::move(rm), [res = res, answer = std::move(answer)](Result<FileReply>) mutable { res->reply(std::move(answer)); });
  }
};

void put_file(SandboxHost& host, HttpRequest& req, Reply res, ApiSandbox& sb) {
  auto up = std::make_shared<Upload>(host);
  up->spooled = req.body_file;
  auto path = raw_path(req);
  if (!path) return res->reply(HttpResponse::error_code(400, "bad_path", path.error().message, "path"));
  auto mkdirs = query_flag(req, "mkdirs");
  auto append = query_flag(req, "append");
  auto mode = octal_mode(req.query_or("mode", ""), 0644);
  for (const auto* e : {mkdirs ? nullptr : &mkdirs.error(), append ? nullptr : &append.error(), mode ? nullptr : &mode.error()}) {
    if (e) return res->reply(HttpResponse::error_code(400, "bad_request", e->message));
  }
  up->id = sb.id();
  up->path = *path;
  up->append = *append;
  up->res = res;
  up->size = req.body_bytes;
  up->in.reset(::open(req.body_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!up->in) return res->reply(HttpResponse::error_code(500, "internal", "the spooled body is gone"));
  FileRequest open;
  open.op = FileOp::open_write;
  open.path = *path;
  open.parents = *mkdirs;
  open.append = *append;
  open.mode = *mode;
  auto begin = [up, open = std::move(open)]() mutable {
    executors::Sandbox* sandbox = still_running(up->host, up->id);
    if (!sandbox) return up->res->reply(HttpResponse::error_code(503, "sandbox_unavailable", "the sandbox stopped during the upload"));
    sandbox->file_op(std::move(open), [up](Result<FileReply> r) {
      if (failed_op(r)) return up->res->reply(failed(r));
      up->out = std::move(r->fd);
      if (!up->append) up->temp = r->entry.name;
      up->opened();
    });
  };
  if (!in_workspace(up->path) || sb.disk().fits(up->size)) return begin();
  // Past the quota by the figure held: measure again before refusing (files removed by commands
  // since the last check count), and refuse before anything is written into the sandbox. A
  // replaced file needs room for both copies while the new one is written (temp file + rename).
  host.measure_disk(sb.id(), [up, begin = std::move(begin)]() mutable {
    ApiSandbox* now = up->host.find(up->id);
    if (now == nullptr) return up->res->reply(HttpResponse::error_code(404, "sandbox_not_found", "the sandbox was removed"));
    if (!now->disk().fits(up->size)) return up->res->reply(now->disk().refusal("PUT " + up->path, up->size));
    begin();
  });
}

// After an operation that may have made room in /workspace (a removal, a move): a sandbox past
// its disk quota is measured again before the answer, so the next exec or upload sees the room.
void reply_measured(SandboxHost& host, const std::string& id, Reply res, HttpResponse answer) {
  ApiSandbox* sb = host.find(id);
  if (!sb || !sb->disk().over()) return res->reply(std::move(answer));
  auto held = std::make_shared<HttpResponse>(std::move(answer));
  host.measure_disk(id, [res, held] { res->reply(std::move(*held)); });
}

// Runs `request` in the sandbox the route names and answers with `ok`'s response, or the error
// (`frees`: after reply_measured).
void run_op(SandboxHost& host, HttpRequest& req, Reply res, FileRequest request,
            std::function<HttpResponse(FileReply&)> ok, bool frees = false) {
  HttpResponse error;
  ApiSandbox* sb = host.resolve(req, error);
  if (!sb) return res->reply(std::move(error));
  sb->sandbox().file_op(std::move(request), [&host, id = sb->id(), frees, res, ok = std::move(ok)](Result<FileReply> r) {
    if (failed_op(r)) return res->reply(failed(r));
    if (frees) return reply_measured(host, id, res, ok(*r));
    res->reply(ok(*r));
  });
}

// POST /fs/copy, whatever its destination: refused while past the quota, and measured after (the
// helper copies inside the sandbox, the size of a tree is known only once it is there). Every
// copy, not only one to a /workspace path: the helper follows the sandbox's links (/tmp/ws ->
// /workspace), and no descriptor comes back to tell where the bytes went. A copy that left the
// workspace past its quota is removed again, unless it replaced something (overwrite).
void copy_into_workspace(SandboxHost& host, HttpRequest& req, Reply res, FileRequest request, json::object answer) {
  HttpResponse error;
  ApiSandbox* sb = host.resolve(req, error);
  if (!sb) return res->reply(std::move(error));
  if (auto refused = sb->disk().gate("POST /fs/copy")) return res->reply(std::move(*refused));
  const std::string to = request.to;
  const bool overwrite = request.overwrite;
  sb->sandbox().file_op(std::move(request), [&host, id = sb->id(), to, overwrite, res, answer](Result<FileReply> r) {
    if (failed_op(r)) return res->reply(failed(r));
    host.measure_disk(id, [&host, id, to, overwrite, res, answer] {
      ApiSandbox* now = host.find(id);
      if (!now || !now->disk().over()) return res->reply(HttpResponse::json(200, answer));
      HttpResponse refused = now->disk().refusal("POST /fs/copy to " + to);
      executors::Sandbox* sandbox = still_running(host, id);
      if (overwrite || !sandbox) return res->reply(std::move(refused));
      FileRequest rm;
      rm.op = FileOp::remove;
      rm.path = to;
      rm.recursive = true;
      sandbox->file_op(std::move(rm), [&host, id, res, refused](Result<FileReply>) {
        host.measure_disk(id, [res, refused] { res->reply(refused); });
      });
    });
  });
}

// A JSON body read with JsonReader; false (answered) when it is malformed.
bool read_body(const HttpRequest& req, Reply& res, const std::vector<std::string>& keys,
               const std::function<void(protocol::JsonReader&)>& fields) {
  auto v = protocol::parse_json(req.body());
  if (!v) return res->reply(HttpResponse::error_code(400, "bad_request", "the body is not JSON: " + v.error().message)), false;
  if (!v->is_object()) return res->reply(HttpResponse::error_code(400, "bad_request", "the body must be a JSON object")), false;
  protocol::JsonReader r(*v);
  r.known(keys);
  fields(r);
  if (!r.ok()) return res->reply(HttpResponse::error_code(400, "bad_request", r.error().message, r.error_field())), false;
  return true;
}

}  // namespace

void add_file_routes(server::Router& router, SandboxHost& host) {
  using server::http::verb;
  const std::string files = std::string(kPrefix) + "/files/{path...}";
  const std::string fsops = std::string(kPrefix) + "/fs/";

  router.add(verb::get, files, [&host](HttpRequest& req, Reply res) {
    auto path = raw_path(req);
    if (!path) return res->reply(HttpResponse::error_code(400, "bad_path", path.error().message, "path"));
    HttpResponse error;
    ApiSandbox* sb = host.resolve(req, error);
    if (!sb) return res->reply(std::move(error));
    FileRequest q;
    q.op = FileOp::open_read;
    q.path = *path;
    auto held = std::make_shared<HttpRequest>(req);  // the headers, for after the helper answered
    sb->sandbox().file_op(std::move(q), [held, res](Result<FileReply> r) {
      if (failed_op(r)) return res->reply(failed(r));
      unique_fd fd = std::move(r->fd);
      serve_file(*held, res, *r, std::move(fd));
    });
  });

  router.add(verb::head, files, [&host](HttpRequest& req, Reply res) {
    auto path = raw_path(req);
    if (!path) return res->reply(HttpResponse::error_code(400, "bad_path", path.error().message, "path"));
    FileRequest q;
    q.op = FileOp::open_read;
    q.path = *path;
    run_op(host, req, res, std::move(q), [](FileReply& r) {
      HttpResponse h = HttpResponse::text(200, "", server::content_type_for(r.entry.path));
      h.headers.emplace_back("ETag", etag_of(r.entry));
      h.headers.emplace_back("X-Boxcar-Size", std::to_string(r.entry.size));
      return h;
    });
  });

  // The body is spooled to a file of the agent's (never held in memory), in its data directory
  // (not a RAM-backed /tmp), then copied in. Only a request with the key, for a sandbox of its
  // owner, with a Content-Length within the sandbox's disk gets that far: nothing is spooled for
  // anyone else, and a chunked body of unknown length is refused (411).
  fs::path spool = host.options().data_dir / "sandbox-uploads";
  std::error_code spool_ec;
  fs::create_directories(spool, spool_ec);
  fs::permissions(spool, fs::perms::owner_all, spool_ec);
  server::RouteOptions put_options;
  put_options.body_limit = kMaxUpload;
  put_options.spool_dir = spool;
  put_options.admit = [&host](const HttpRequest& head) -> std::optional<HttpResponse> {
    if (!host.key_ok(head)) return HttpResponse::error_code(401, "unauthorized", "a data-plane request needs the agent's key");
    auto it = head.params.find("id");
    ApiSandbox* sb = it == head.params.end() ? nullptr : host.find(it->second);
    const std::string owner = head.header(protocol::kOwnerHeader);
    if (!sb || (owner != protocol::kAnyOwner && owner != sb->owner())) {
      return HttpResponse::error_code(404, "sandbox_not_found", "no such sandbox");
    }
    const std::string length = head.header("Content-Length");
    if (length.empty()) {
      return HttpResponse::error_code(411, "bad_request", "send the file with a Content-Length (curl -T does)");
    }
    uint64_t n = std::strtoull(length.c_str(), nullptr, 10);
    auto path = raw_path(head);
    const auto& resources = sb->spec().resources;
    if (path && in_workspace(*path)) {
      // Nothing is spooled for an upload /workspace cannot take.
      if (n > sb->disk().limit() || sb->disk().over()) return sb->disk().refusal("PUT " + *path, n);
    } else if (path && (*path == "/tmp" || path->rfind("/tmp/", 0) == 0) && n > static_cast<uint64_t>(resources.tmp_bytes)) {
      return HttpResponse::error_code(507, "quota_exceeded", "PUT " + *path + ": the body is " + length + " bytes; /tmp is a tmpfs of " +
                                                                 std::to_string(resources.tmp_bytes) + " (resources.tmp_bytes): write it to /workspace or create the sandbox with a larger tmp_bytes");
    } else if (n > static_cast<uint64_t>(std::max(resources.disk_bytes, resources.tmp_bytes))) {
      return HttpResponse::error_code(413, "too_large", "the body is " + length + " bytes; this sandbox's disk holds " +
                                                            std::to_string(sb->spec().resources.disk_bytes));
    }
    return std::nullopt;
  };
  router.add(verb::put, files, [&host](HttpRequest& req, Reply res) {
    HttpResponse error;
    ApiSandbox* sb = host.resolve(req, error);
    if (!sb) {
      std::error_code ec;
      fs::remove(req.body_file, ec);
      return res->reply(std::move(error));
    }
    put_file(host, req, res, *sb);
  }, put_options);

  router.add(verb::delete_, files, [&host](HttpRequest& req, Reply res) {
    auto path = raw_path(req);
    auto recursive = query_flag(req, "recursive");
    if (!path) return res->reply(HttpResponse::error_code(400, "bad_path", path.error().message, "path"));
    if (!recursive) return res->reply(HttpResponse::error_code(400, "bad_request", recursive.error().message, "recursive"));
    FileRequest q;
    q.op = FileOp::remove;
    q.path = *path;
    q.recursive = *recursive;
    run_op(host, req, res, std::move(q), [](FileReply&) { return HttpResponse::text(204, ""); }, /*frees=*/true);
  });

  router.add(verb::post, fsops + "mkdir", [&host](HttpRequest& req, Reply res) {
    std::string raw, mode_text;
    bool parents = false;
    if (!read_body(req, res, {"path", "parents", "mode"}, [&](protocol::JsonReader& r) {
          r.required("path", raw).optional("parents", parents).optional("mode", mode_text);
        })) return;
    FileRequest q;
    q.op = FileOp::mkdir;
    if (!checked_path(raw, "path", q.path, res)) return;
    auto mode = octal_mode(mode_text, 0755);
    if (!mode) return res->reply(HttpResponse::error_code(400, "bad_request", mode.error().message, "mode"));
    q.parents = parents;
    q.mode = *mode;
    std::string path = q.path;
    run_op(host, req, res, std::move(q), [path](FileReply&) { return HttpResponse::json(200, json::object{{"path", path}}); });
  });

  for (const char* verb_name : {"move", "copy"}) {
    const bool move = std::string_view(verb_name) == "move";
    router.add(verb::post, fsops + verb_name, [&host, move](HttpRequest& req, Reply res) {
      std::string from, to;
      bool overwrite = false, recursive = false;
      std::vector<std::string> keys = {"from", "to", "overwrite"};
      if (!move) keys.push_back("recursive");
      if (!read_body(req, res, keys, [&](protocol::JsonReader& r) {
            r.required("from", from).required("to", to).optional("overwrite", overwrite);
            if (!move) r.optional("recursive", recursive);
          })) return;
      FileRequest q;
      q.op = move ? FileOp::move : FileOp::copy;
      if (!checked_path(from, "from", q.path, res) || !checked_path(to, "to", q.to, res)) return;
      q.overwrite = overwrite;
      q.recursive = recursive;
      json::object answer{{"from", q.path}, {"to", q.to}};
      if (!move) return copy_into_workspace(host, req, res, std::move(q), std::move(answer));
      run_op(host, req, res, std::move(q), [answer](FileReply&) { return HttpResponse::json(200, answer); }, move);
    });
  }

  router.add(verb::get, fsops + "list", [&host](HttpRequest& req, Reply res) {
    FileRequest q;
    q.op = FileOp::list;
    if (!checked_path(req.query_or("path", kDefaultCwd), "path", q.path, res)) return;
    auto recursive = query_flag(req, "recursive");
    auto hidden = query_flag(req, "hidden", true);
    if (!recursive || !hidden) {
      return res->reply(HttpResponse::error_code(400, "bad_request", (!recursive ? recursive : hidden).error().message));
    }
    const std::string limit_text = req.query_or("limit", std::to_string(kListDefault));
    char* end = nullptr;
    long long limit = std::strtoll(limit_text.c_str(), &end, 10);
    if (limit_text.empty() || *end != 0 || limit < 1 || limit > kListMax) {
      return res->reply(HttpResponse::error_code(400, "bad_request", "limit=" + limit_text + ": expected 1 to " +
                                                                         std::to_string(kListMax), "limit"));
    }
    q.recursive = *recursive;
    q.hidden = *hidden;
    q.limit = static_cast<size_t>(limit);
    run_op(host, req, res, std::move(q), [](FileReply& r) {
      json::array entries;
      for (const auto& e : r.entries) entries.push_back(entry_json(e));
      return HttpResponse::json(200, json::object{{"entries", std::move(entries)}, {"truncated", r.truncated}});
    });
  });

  router.add(verb::get, fsops + "stat", [&host](HttpRequest& req, Reply res) {
    FileRequest q;
    q.op = FileOp::stat;
    if (!checked_path(req.query_or("path", ""), "path", q.path, res)) return;
    run_op(host, req, res, std::move(q), [](FileReply& r) { return HttpResponse::json(200, entry_json(r.entry)); });
  });

  router.add(verb::get, fsops + "exists", [&host](HttpRequest& req, Reply res) {
    FileRequest q;
    q.op = FileOp::stat;
    if (!checked_path(req.query_or("path", ""), "path", q.path, res)) return;
    HttpResponse error;
    ApiSandbox* sb = host.resolve(req, error);
    if (!sb) return res->reply(std::move(error));
    sb->sandbox().file_op(std::move(q), [res](Result<FileReply> r) {
      if (r && (r->err == ENOENT || r->err == ENOTDIR)) {
        return res->reply(HttpResponse::json(200, json::object{{"exists", false}, {"type", nullptr}}));
      }
      if (failed_op(r)) return res->reply(failed(r));
      res->reply(HttpResponse::json(200, json::object{{"exists", true}, {"type", type_name(r->entry.type)}}));
    });
  });
  add_watch_routes(router, host);
}

}  // namespace boxcar::sandboxes
