// [[step.cache]] entries kept by the server so another agent can restore them (docs/api.md,
// "Caches"): an agent holding a job's lease uploads an entry it saved (a tar) and looks one up
// and fetches it; the repository is always the job's own, so entries are never shared between
// repositories, and a fork's pull request may look up but never upload.
//
//   cache_dir/<repository id>/sha256/<hash>   an entry's tar, by content
//   cache_dir/<repository id>/keys/<key id>   "<sha256> <size> <created ms>\n<key>"; mtime = last use
//   cache_dir/tmp/                            uploads being received
//
// Past cache_max_bytes (every repository together) the least recently used keys go, then any
// tar no key names. No database rows: the entries are the server's copy of what agents keep
// anyway, and losing them costs a download, not a result.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include <boost/json.hpp>

#include "base/sha256.h"
#include "http/byte_range.h"
#include "protocol/agent_paths.h"
#include "server/agent_identity.h"
#include "server/api.h"

namespace boxcar::server {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

// Held while keys and tars are placed, looked up and evicted: a tar is never removed between a
// lookup naming it and its fetch starting, nor between an upload finding it and naming it.
std::mutex cache_mu;

constexpr size_t kMaxKeyBytes = 1024;    // a key as the agent made it (templates expanded)
constexpr size_t kMaxRestoreKeys = 16;   // prefixes in one lookup

struct KeyRecord {
  fs::path file;
  std::string key, sha256;
  uint64_t size = 0;
  int64_t created = 0;
  fs::file_time_type used;
};

fs::path repo_dir(const ApiContext& ctx, const std::string& repository) {
  return ctx.options.cache_dir / sha256_hex("repository\n" + repository).substr(0, 32);
}

fs::path key_file(const fs::path& repo, const std::string& key) {
  return repo / "keys" / sha256_hex("key\n" + key).substr(0, 32);
}

std::optional<KeyRecord> read_key(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  KeyRecord r;
  r.file = file;
  if (!(in >> r.sha256 >> r.size >> r.created) || !is_sha256_hex(r.sha256)) return std::nullopt;
  in.get();
  std::ostringstream rest;
  rest << in.rdbuf();
  r.key = rest.str();
  std::error_code ec;
  r.used = fs::last_write_time(file, ec);
  if (ec) return std::nullopt;
  return r;
}

bool valid_key(const std::string& key) { return !key.empty() && key.size() <= kMaxKeyBytes; }

// The job's repository (and whether it came from a fork), once the request holds its lease;
// else the answer that refuses it.
struct CacheJob {
  int64_t id = 0;
  std::string repo;  // whose caches: the job's repository, or a fork's base
  bool fork = false;
};
std::variant<CacheJob, HttpResponse> cache_job(ApiContext& ctx, const HttpRequest& req) {
  auto holder = lease_holder_of_request(ctx, req);
  if (auto* refusal = std::get_if<HttpResponse>(&holder)) return std::move(*refusal);
  auto id = parse_job_id(req.params.at("id"));
  if (!id) return HttpResponse::error(404, "no such job: " + req.params.at("id"));
  if (ctx.options.cache_dir.empty()) {
    return HttpResponse::error(503, "this server keeps no caches (no data directory)");
  }
  auto held = ctx.store.holds_lease(*id, std::get<LeaseHolder>(holder));
  if (!held) return store_error(held.error());
  if (!*held) return lease_lost(*id, std::get<LeaseHolder>(holder));
  auto job = ctx.store.job(*id);
  if (!job) return store_error(job.error());
  if (!*job) return HttpResponse::error(404, "no such job: " + std::to_string(*id));
  // A fork's pull request reads what its base repository saved (it saves nothing itself).
  const std::string& repo = (*job)->fork && !(*job)->base_repo.empty() ? (*job)->base_repo : (*job)->repo;
  return CacheJob{*id, repo, (*job)->fork};
}

// Removes least recently used keys (never `keep`) until the tars named come to at most the
// cap, and every tar no key names. Under cache_mu.
void evict(const ApiContext& ctx, const fs::path& keep) {
  struct Repo {
    std::map<std::string, uint64_t> blobs;  // on disk
    std::map<std::string, int> refs;
  };
  std::map<fs::path, Repo> repos;
  std::vector<KeyRecord> keys;
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& r : fs::directory_iterator(ctx.options.cache_dir, ec)) {
    if (r.path().filename() == "tmp") continue;
    Repo& repo = repos[r.path()];
    std::error_code ec2;
    for (const auto& b : fs::directory_iterator(r.path() / "sha256", ec2)) {
      std::error_code ec3;
      uint64_t size = b.file_size(ec3);
      repo.blobs[b.path().filename().string()] = ec3 ? 0 : size;
    }
    for (const auto& k : fs::directory_iterator(r.path() / "keys", ec2)) {
      if (k.path().filename().string().starts_with(".")) continue;
      auto record = read_key(k.path());
      if (!record || !repo.blobs.contains(record->sha256)) {
        fs::remove(k.path(), ec2);  // names a tar that is gone
        continue;
      }
      repo.refs[record->sha256]++;
      keys.push_back(std::move(*record));
    }
    for (auto it = repo.blobs.begin(); it != repo.blobs.end();) {
      if (repo.refs.contains(it->first)) {
        total += it->second;
        ++it;
      } else {
        fs::remove(r.path() / "sha256" / it->first, ec2);
        it = repo.blobs.erase(it);
      }
    }
  }
  std::sort(keys.begin(), keys.end(), [](const KeyRecord& a, const KeyRecord& b) { return a.used < b.used; });
  for (const KeyRecord& k : keys) {
    if (total <= ctx.options.cache_max_bytes) break;
    if (k.file == keep) continue;
    fs::path repo = k.file.parent_path().parent_path();
    fs::remove(k.file, ec);
    if (--repos[repo].refs[k.sha256] == 0) {
      fs::remove(repo / "sha256" / k.sha256, ec);
      total -= repos[repo].blobs[k.sha256];
    }
  }
}

HttpResponse too_large(const ApiContext& ctx) {
  return HttpResponse::error(413, "the cache entry is larger than the server's cache size of " +
                                      std::to_string(ctx.options.cache_max_bytes) +
                                      " bytes (boxcar serve --cache-size)");
}

std::optional<HttpResponse> admit_upload(ApiContext& ctx, const HttpRequest& req) {
  auto job = cache_job(ctx, req);
  if (auto* refusal = std::get_if<HttpResponse>(&job)) return std::move(*refusal);
  if (std::get<CacheJob>(job).fork) {
    // 422, not 403: an agent takes 401/403 as its credential refused.
    return HttpResponse::error(422, "a job from a fork's pull request restores caches but never saves them");
  }
  if (!valid_key(req.query_or("key", ""))) {
    return HttpResponse::error(400, "?key= must be 1 to " + std::to_string(kMaxKeyBytes) + " bytes");
  }
  if (!is_sha256_hex(req.query_or("sha256", ""))) {
    return HttpResponse::error(400, "?sha256= must be 64 lowercase hex digits");
  }
  auto length = req.raw.find(http::field::content_length);
  if (length != req.raw.end()) {
    uint64_t n = 0;
    if (!parse_u64(std::string_view(length->value().data(), length->value().size()), n)) {
      return HttpResponse::error(400, "bad Content-Length");
    }
    if (n > ctx.options.cache_max_bytes) return too_large(ctx);
  }
  return std::nullopt;
}

bool write_key(const fs::path& file, const KeyRecord& r) {
  fs::path tmp = file.parent_path() / ("." + file.filename().string() + ".new");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << r.sha256 << ' ' << r.size << ' ' << r.created << '\n' << r.key;
    if (!out.flush()) return false;
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  return !ec;
}

void upload(ApiContext& ctx, HttpRequest& req, Responder& res) {
  struct Remove {  // the spool file, unless it became the tar
    fs::path file;
    ~Remove() {
      std::error_code ec;
      if (!file.empty()) fs::remove(file, ec);
    }
  } spool{req.body_file};
  if (auto refused = admit_upload(ctx, req)) return res.reply(std::move(*refused));
  auto job = cache_job(ctx, req);  // again: the body took a while
  if (auto* refusal = std::get_if<HttpResponse>(&job)) return res.reply(std::move(*refusal));
  std::string key = req.query_or("key", "");
  std::string sha = req.query_or("sha256", "");
  if (req.body_file.empty()) return res.reply(HttpResponse::error(500, "upload was not spooled"));
  if (req.body_sha256 != sha) {
    return res.reply(HttpResponse::error(400, "sha256 mismatch: the body hashes to " + req.body_sha256 +
                                                  ", not " + sha + "; nothing was stored"));
  }
  if (req.body_bytes > ctx.options.cache_max_bytes) return res.reply(too_large(ctx));
  std::lock_guard lock(cache_mu);
  fs::path repo = repo_dir(ctx, std::get<CacheJob>(job).repo);
  fs::path file = key_file(repo, key);
  std::error_code ec;
  if (fs::exists(file, ec)) {  // entries are immutable: the first save of a key stays
    return res.reply(HttpResponse::json(200, json::object{{"stored", false}, {"key", key}}));
  }
  fs::create_directories(repo / "keys", ec);
  fs::create_directories(repo / "sha256", ec);
  fs::path blob = repo / "sha256" / sha;
  if (!fs::exists(blob, ec)) {
    fs::rename(req.body_file, blob, ec);
    if (ec) return res.reply(HttpResponse::error(500, "cannot store the cache entry: " + ec.message()));
    ::chmod(blob.c_str(), 0600);
    spool.file.clear();
  }
  KeyRecord record{file, key, sha, req.body_bytes, now_ms(), {}};
  if (!write_key(file, record)) {
    return res.reply(HttpResponse::error(500, "cannot record the cache entry " + key));
  }
  evict(ctx, file);
  res.reply(HttpResponse::json(200, json::object{{"stored", true}, {"key", key}, {"sha256", sha},
                                                 {"size", req.body_bytes}}));
}

// {"key": K, "restore_keys": [P...]} -> K exactly, else for each prefix in order the newest key
// starting with it: {"key", "sha256", "size", "exact"}; 404 for none.
void lookup(ApiContext& ctx, HttpRequest& req, Responder& res) {
  auto job = cache_job(ctx, req);
  if (auto* refusal = std::get_if<HttpResponse>(&job)) return res.reply(std::move(*refusal));
  boost::system::error_code jec;
  json::value body = json::parse(req.body(), jec);
  if (jec || !body.is_object() || !body.as_object().contains("key") || !body.at("key").is_string()) {
    return res.reply(HttpResponse::error(400, "the body must be {\"key\": \"...\", \"restore_keys\": [\"...\"]}"));
  }
  std::string key(body.at("key").as_string());
  std::vector<std::string> prefixes;
  if (const json::value* rk = body.as_object().if_contains("restore_keys")) {
    if (!rk->is_array() || rk->as_array().size() > kMaxRestoreKeys) {
      return res.reply(HttpResponse::error(400, "\"restore_keys\" must be an array of at most " +
                                                    std::to_string(kMaxRestoreKeys) + " strings"));
    }
    for (const auto& p : rk->as_array()) {
      if (!p.is_string() || !valid_key(std::string(p.as_string()))) {
        return res.reply(HttpResponse::error(400, "a restore key must be a string of 1 to " +
                                                      std::to_string(kMaxKeyBytes) + " bytes"));
      }
      prefixes.emplace_back(p.as_string());
    }
  }
  if (!valid_key(key)) {
    return res.reply(HttpResponse::error(400, "\"key\" must be 1 to " + std::to_string(kMaxKeyBytes) + " bytes"));
  }
  std::lock_guard lock(cache_mu);
  fs::path repo = repo_dir(ctx, std::get<CacheJob>(job).repo);
  std::optional<KeyRecord> found = read_key(key_file(repo, key));
  bool exact = found && found->key == key && fs::exists(repo / "sha256" / found->sha256);
  if (!exact) {
    found.reset();
    std::vector<KeyRecord> all;
    std::error_code ec;
    for (const auto& k : fs::directory_iterator(repo / "keys", ec)) {
      if (k.path().filename().string().starts_with(".")) continue;
      if (auto r = read_key(k.path())) all.push_back(std::move(*r));
    }
    std::sort(all.begin(), all.end(), [](const KeyRecord& a, const KeyRecord& b) { return a.created > b.created; });
    for (const std::string& prefix : prefixes) {
      for (KeyRecord& r : all) {
        if (r.key.starts_with(prefix) && fs::exists(repo / "sha256" / r.sha256, ec)) {
          found = std::move(r);
          break;
        }
      }
      if (found) break;
    }
  }
  if (!found) return res.reply(HttpResponse::error(404, "no cache entry for " + key + " in this repository"));
  std::error_code ec;
  fs::last_write_time(found->file, fs::file_time_type::clock::now(), ec);  // its last use
  res.reply(HttpResponse::json(200, json::object{{"key", found->key}, {"sha256", found->sha256},
                                                 {"size", found->size}, {"exact", exact}}));
}

void fetch(ApiContext& ctx, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto job = cache_job(ctx, req);
  if (auto* refusal = std::get_if<HttpResponse>(&job)) return res->reply(std::move(*refusal));
  const std::string& sha = req.params["sha256"];
  if (!is_sha256_hex(sha)) return res->reply(HttpResponse::error(400, "a cache entry is named by its sha256"));
  fs::path blob = repo_dir(ctx, std::get<CacheJob>(job).repo) / "sha256" / sha;
  std::error_code ec;
  uint64_t size = fs::file_size(blob, ec);
  if (ec) return res->reply(HttpResponse::error(404, "this repository has no cache entry " + sha));
  HttpResponse head;
  head.status = 200;
  head.content_type = "application/x-tar";
  res->reply_file(std::move(head), blob, 0, size);
}

}  // namespace

void add_cache_routes(Router& router, ApiContext& ctx) {
  RouteOptions up;
  up.body_limit = static_cast<size_t>(ctx.options.cache_max_bytes);
  up.admit = [&ctx](const HttpRequest& head) { return admit_upload(ctx, head); };
  up.spool_dir = ctx.options.cache_dir.empty() ? fs::path("/nonexistent/boxcar-caches")
                                                : ctx.options.cache_dir / "tmp";
  if (!ctx.options.cache_dir.empty()) {
    std::error_code ec;
    fs::create_directories(ctx.options.cache_dir / "tmp", ec);
    ::chmod(ctx.options.cache_dir.c_str(), 0700);
  }
  router.add(http::verb::post, protocol::agent_job_route(protocol::kCaches),
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { upload(ctx, req, *res); },
             std::move(up));
  router.add(http::verb::post, protocol::agent_job_route(protocol::kCacheLookup),
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { lookup(ctx, req, *res); });
  router.add(http::verb::get, protocol::agent_job_route(protocol::kCaches) + "/{sha256}",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { fetch(ctx, req, res); });
}

}  // namespace boxcar::server
