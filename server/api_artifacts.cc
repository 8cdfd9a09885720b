// Artifacts: the agent's upload (streamed to a spool file, hashed on the way, kept by content
// under artifact_dir/sha256/<ab>/<hash>), the users' list and download (Range, ETag), and the
// retention sweep. A link is a record with its target text and no blob; GET follows it inside
// the job's artifacts.
#include <sys/stat.h>

#include <map>
#include <mutex>
#include <optional>

#include <boost/json.hpp>

#include "base/link_target.h"
#include "base/rfc3339.h"
#include "base/safe_relative_path.h"
#include "base/sha256.h"
#include "http/byte_range.h"
#include "protocol/agent_paths.h"
#include "server/agent_identity.h"
#include "server/api.h"
#include "server/auth.h"

namespace boxcar::server {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

// Held while a blob is placed and recorded, and while the sweep deletes unreferenced blobs, so
// a blob is never deleted between an upload finding it present and recording a reference.
std::mutex blob_mu;

// Where link `path` of a job's artifacts ends, following the job's other links: the record of
// the file it names, or why there is none (a chain that leaves or loops, or a target that was
// never uploaded).
struct LinkEnd {
  std::optional<ArtifactRecord> file;
  std::string why;
};
LinkEnd follow_link(const std::map<std::string, ArtifactRecord>& all, const std::string& path) {
  LinkResolution r = resolve_in_set(path, [&all](const std::string& p) -> std::optional<std::string> {
    auto it = all.find(p);
    if (it == all.end() || it->second.link_target.empty()) return std::nullopt;
    return it->second.link_target;
  });
  if (!r.ok()) return {std::nullopt, "it " + r.error};
  auto it = all.find(r.path);
  if (it == all.end()) return {std::nullopt, "its target \"" + r.path + "\" is not among the job's artifacts"};
  return {it->second, ""};
}

std::map<std::string, ArtifactRecord> by_path(const std::vector<ArtifactRecord>& records) {
  std::map<std::string, ArtifactRecord> out;
  for (const auto& a : records) out.emplace(a.path, a);
  return out;
}

// A link is listed with its target text and the size and sha256 of the file it ends at (what
// downloading it serves); empty when that file is not there.
json::object artifact_json(const ArtifactRecord& a, const std::map<std::string, ArtifactRecord>& all) {
  json::object o{{"path", a.path},     {"kind", a.link_target.empty() ? "file" : "link"},
                 {"size", a.size},     {"sha256", a.sha256},
                 {"step", a.step},     {"created_at", format_rfc3339(a.created_at)}};
  if (!a.link_target.empty()) {
    o["target"] = a.link_target;
    LinkEnd end = follow_link(all, a.path);
    if (end.file) {
      o["size"] = end.file->size;
      o["sha256"] = end.file->sha256;
    }
  }
  return o;
}

// Bytes the job's other artifacts (all but `path`) already take.
Result<uint64_t> job_bytes_besides(ApiContext& ctx, int64_t id, const std::string& path) {
  auto all = ctx.store.artifacts(id);
  if (!all) return all.error();
  uint64_t total = 0;
  for (const auto& a : *all) {
    if (a.path != path) total += static_cast<uint64_t>(a.size);
  }
  return total;
}

HttpResponse job_limit_exceeded(const ApiContext& ctx, int64_t id) {
  return HttpResponse::error(413, "job " + std::to_string(id) + " would exceed its artifact limit of " +
                                      std::to_string(ctx.options.artifact_max_job) + " bytes");
}

// The checks that need no body: credential, job, lease, query, limits.
std::optional<HttpResponse> admit_upload(ApiContext& ctx, const HttpRequest& req) {
  auto holder = lease_holder_of_request(ctx, req);
  if (auto* refusal = std::get_if<HttpResponse>(&holder)) return std::move(*refusal);
  auto id = parse_job_id(req.params.at("id"));
  if (!id) return HttpResponse::error(404, "no such job: " + req.params.at("id"));
  if (ctx.options.artifact_dir.empty()) {
    return HttpResponse::error(503, "this server keeps no artifacts (no data directory)");
  }
  std::string path = req.query_or("path", "");
  std::string sha = req.query_or("sha256", "");
  if (!safe_relative_path(path)) {
    return HttpResponse::error(400, "?path= must be a relative path without \"..\", \".\" or empty segments");
  }
  if (std::string link = req.query_or("link", ""); req.query.count("link")) {
    if (!lexical_link_target(path, link)) {
      return HttpResponse::error(400, "?link= must be a relative target that stays inside the job's "
                                      "artifacts (read from the link's directory), not \"" + link + "\"");
    }
  } else if (!is_sha256_hex(sha)) return HttpResponse::error(400, "?sha256= must be 64 lowercase hex digits");
  auto held = ctx.store.holds_lease(*id, std::get<LeaseHolder>(holder));
  if (!held) return store_error(held.error());
  if (!*held) return lease_lost(*id, std::get<LeaseHolder>(holder));
  auto length = req.raw.find(http::field::content_length);
  if (length != req.raw.end()) {
    uint64_t n = 0;
    if (!parse_u64(std::string_view(length->value().data(), length->value().size()), n)) {
      return HttpResponse::error(400, "bad Content-Length");
    }
    if (n > ctx.options.artifact_max_file) {
      return HttpResponse::error(413, "artifact larger than the server's per-file limit of " +
                                          std::to_string(ctx.options.artifact_max_file) + " bytes");
    }
    auto used = job_bytes_besides(ctx, *id, path);
    if (!used) return store_error(used.error());
    if (*used + n > ctx.options.artifact_max_job) return job_limit_exceeded(ctx, *id);
  }
  return std::nullopt;
}

// An agent collects a step's artifacts from real paths, so nothing lies under one of its links
// and no link stands where other artifacts are a directory. A record that says otherwise would
// have a download (boxcar artifacts --download) write through the link, out of its directory.
std::optional<HttpResponse> nested_with_a_link(ApiContext& ctx, int64_t id, const std::string& path, bool is_link) {
  auto all = ctx.store.artifacts(id);
  if (!all) return store_error(all.error());
  for (const auto& a : *all) {
    if (!a.link_target.empty() && path.starts_with(a.path + "/")) {
      return HttpResponse::error(400, "\"" + path + "\" lies under the link \"" + a.path + "\"; nothing was stored");
    }
    if (is_link && a.path.starts_with(path + "/")) {
      return HttpResponse::error(400, "a link cannot stand at \"" + path + "\": \"" + a.path +
                                          "\" lies under it; nothing was stored");
    }
  }
  return std::nullopt;
}

void upload(ApiContext& ctx, HttpRequest& req, Responder& res) {
  struct Remove {  // the spool file, unless it became the blob
    fs::path file;
    ~Remove() {
      std::error_code ec;
      if (!file.empty()) fs::remove(file, ec);
    }
  } spool{req.body_file};
  if (auto refused = admit_upload(ctx, req)) return res.reply(std::move(*refused));
  // Checked again: the body took a while, and the agent may have been revoked meanwhile.
  auto holder = lease_holder_of_request(ctx, req);
  if (auto* refusal = std::get_if<HttpResponse>(&holder)) return res.reply(std::move(*refusal));
  const LeaseHolder& agent = std::get<LeaseHolder>(holder);
  int64_t id = *parse_job_id(req.params["id"]);
  std::string path = req.query_or("path", "");
  std::string sha = req.query_or("sha256", "");
  if (auto refused = nested_with_a_link(ctx, id, path, req.query.count("link") > 0)) return res.reply(std::move(*refused));
  if (req.query.count("link")) {  // checked by admit_upload; nothing of the body is kept
    ArtifactRecord record{path, "", 0, req.query_or("step", ""), now_ms(), req.query_or("link", "")};
    auto added = ctx.store.add_artifact(id, agent, record);
    if (!added) return res.reply(store_error(added.error()));
    if (!*added) return res.reply(lease_lost(id, agent));
    return res.reply(HttpResponse::json(200, json::object{{"stored", true}, {"link", record.link_target}}));
  }
  if (req.body_file.empty()) return res.reply(HttpResponse::error(500, "upload was not spooled"));
  if (req.body_sha256 != sha) {
    return res.reply(HttpResponse::error(400, "sha256 mismatch: the body hashes to " + req.body_sha256 +
                                                  ", not " + sha + "; nothing was stored"));
  }
  auto used = job_bytes_besides(ctx, id, path);
  if (!used) return res.reply(store_error(used.error()));
  if (*used + req.body_bytes > ctx.options.artifact_max_job) return res.reply(job_limit_exceeded(ctx, id));

  std::lock_guard lock(blob_mu);
  fs::path blob = blob_path(ctx, sha);
  std::error_code ec;
  bool created = false;
  if (!fs::exists(blob, ec)) {
    fs::create_directories(blob.parent_path(), ec);
    fs::rename(req.body_file, blob, ec);
    if (ec) return res.reply(HttpResponse::error(500, "cannot store the artifact: " + ec.message()));
    ::chmod(blob.c_str(), 0600);  // the data directory's files are the server's alone
    spool.file.clear();
    created = true;
  }
  ArtifactRecord record{path, sha, static_cast<int64_t>(req.body_bytes), req.query_or("step", ""),
                        now_ms(), ""};
  auto added = ctx.store.add_artifact(id, agent, record);
  if (!added || !*added) {
    if (created) fs::remove(blob, ec);  // nothing refers to it
    if (!added) return res.reply(store_error(added.error()));
    return res.reply(lease_lost(id, agent));
  }
  res.reply(HttpResponse::json(200, json::object{{"stored", true}, {"sha256", sha},
                                                 {"size", req.body_bytes}, {"new_blob", created}}));
}

void list(ApiContext& ctx, HttpRequest& req, Responder& res) {
  auto job = job_of_request(ctx, req, res);
  if (!job) return;
  auto all = ctx.store.artifacts(job->id);
  if (!all) return res.reply(store_error(all.error()));
  json::array out;
  auto paths = by_path(*all);
  for (const auto& a : *all) out.push_back(artifact_json(a, paths));
  res.reply(HttpResponse::json(200, json::object{{"artifacts", std::move(out)}}));
}

void download(ApiContext& ctx, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto id = parse_job_id(req.params["id"]);
  if (!id) return res->reply(HttpResponse::error(404, "no such job: " + req.params["id"]));
  const std::string& path = req.params["path"];
  if (!safe_relative_path(path)) {
    return res->reply(HttpResponse::error(400, "artifact paths are relative, without \"..\" or \".\""));
  }
  auto a = ctx.store.artifact(*id, path);
  if (!a) return res->reply(store_error(a.error()));
  if (!*a) {
    return res->reply(HttpResponse::error(404, "job " + std::to_string(*id) + " has no artifact " + path));
  }
  // A link serves the bytes of the file it ends at; X-Boxcar-Link-Target says it was one.
  std::string link_target = (*a)->link_target;
  if (!link_target.empty()) {
    auto all = ctx.store.artifacts(*id);
    if (!all) return res->reply(store_error(all.error()));
    LinkEnd end = follow_link(by_path(*all), path);
    if (!end.file) {
      return res->reply(HttpResponse::error(404, "artifact " + path + " is a link to \"" + link_target +
                                                     "\", but " + end.why));
    }
    *a = std::move(end.file);
  }
  fs::path blob = blob_path(ctx, (*a)->sha256);
  std::error_code ec;
  uint64_t size = fs::file_size(blob, ec);
  if (ec) return res->reply(HttpResponse::error(410, "the artifact's content is gone: " + ec.message()));
  std::string etag = "\"" + (*a)->sha256 + "\"";
  if (req.header("If-None-Match") == etag) {
    HttpResponse r = HttpResponse::text(304, "", "");
    r.headers.emplace_back("ETag", etag);
    return res->reply(std::move(r));
  }
  HttpResponse head;
  head.content_type = content_type_for((*a)->path);
  head.headers.emplace_back("ETag", etag);
  head.headers.emplace_back("Accept-Ranges", "bytes");
  if (!link_target.empty()) head.headers.emplace_back("X-Boxcar-Link-Target", link_target);
  // A step's HTML report still renders, but in an opaque origin with scripts off: an artifact
  // must not run code with the API's (and the web UI's) origin.
  head.headers.emplace_back("Content-Security-Policy", "sandbox");
  head.headers.emplace_back("X-Content-Type-Options", "nosniff");
  std::string range_header = req.header("Range");
  if (std::string if_range = req.header("If-Range"); !if_range.empty() && if_range != etag) {
    range_header.clear();
  }
  ByteRange range = parse_byte_range(range_header, size);
  if (range.kind == ByteRange::unsatisfiable) {
    HttpResponse r = HttpResponse::error(416, "range not satisfiable: the artifact has " +
                                                  std::to_string(size) + " bytes");
    r.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
    return res->reply(std::move(r));
  }
  if (range.kind == ByteRange::part) {
    head.status = 206;
    head.headers.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                   std::to_string(range.last) + "/" +
                                                   std::to_string(size));
    return res->reply_file(std::move(head), blob, range.first, range.last - range.first + 1);
  }
  head.status = 200;
  res->reply_file(std::move(head), blob, 0, size);
}

}  // namespace

fs::path blob_path(const ApiContext& ctx, const std::string& sha256) {
  return ctx.options.artifact_dir / "sha256" / sha256.substr(0, 2) / sha256;
}

void download_artifact(ApiContext& ctx, HttpRequest& req, std::shared_ptr<Responder> res) {
  download(ctx, req, std::move(res));
}

void add_artifact_routes(Router& router, ApiContext& ctx) {
  RouteOptions up;
  up.body_limit = static_cast<size_t>(ctx.options.artifact_max_file);
  up.admit = [&ctx](const HttpRequest& head) { return admit_upload(ctx, head); };
  up.spool_dir = ctx.options.artifact_dir.empty() ? fs::path("/nonexistent/boxcar-artifacts")
                                                   : ctx.options.artifact_dir / "tmp";
  router.add(http::verb::post, protocol::agent_job_route(protocol::kArtifacts),
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { upload(ctx, req, *res); },
             std::move(up));
  router.add(http::verb::get, "/api/v1/jobs/{id}/artifacts",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { list(ctx, req, *res); },
             requires_scope(ctx, Scope::read, Anonymous::public_read));
  router.add(http::verb::get, "/api/v1/jobs/{id}/artifacts/{path...}",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { download(ctx, req, res); },
             requires_scope(ctx, Scope::read, Anonymous::public_read));
}

size_t remove_unreferenced_blobs(ApiContext& ctx,
                                 const std::function<std::vector<std::string>()>& expire) {
  std::lock_guard lock(blob_mu);
  std::vector<std::string> gone = expire();
  if (ctx.options.artifact_dir.empty()) return 0;
  size_t removed = 0;
  for (const auto& sha : gone) {
    std::error_code ec;
    if (is_sha256_hex(sha) && fs::remove(blob_path(ctx, sha), ec)) ++removed;
  }
  return removed;
}

size_t sweep_artifacts(ApiContext& ctx) {
  if (ctx.options.artifact_dir.empty()) return 0;
  return remove_unreferenced_blobs(ctx, [&ctx] {
    auto gone = ctx.store.expire_artifacts(now_ms() - ctx.options.artifact_retention_ms);
    return gone ? *gone : std::vector<std::string>{};
  });
}

}  // namespace boxcar::server
