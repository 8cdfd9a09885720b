#include "agent/daemon/cache_client.h"

#include <algorithm>
#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>

#include "base/sha256.h"
#include "base/url.h"
#include "protocol/agent_paths.h"
#include "protocol/agent_protocol.h"

namespace boxcar::agent {

namespace json = boost::json;

namespace {

constexpr Millis kLookupTimeout{30'000};
constexpr Millis kFetchIdle{60'000};

}  // namespace

CacheClient::CacheClient(HttpClient& client, JobOutbox& outbox, int64_t job, std::string lease,
                         std::filesystem::path dir, uint64_t max_bytes)
    : client_(client), outbox_(outbox), job_(job), lease_(std::move(lease)), dir_(std::move(dir)), max_bytes_(max_bytes) {}

CacheClient::~CacheClient() {
  *alive_ = false;
  for (uint64_t id : in_flight_) client_.cancel(id);
}

void CacheClient::fetch(const std::string& key, const std::vector<std::string>& restore_keys,
                        std::function<void(std::optional<RemoteCacheEntry>, std::string)> done) {
  json::array prefixes;
  for (const auto& p : restore_keys) prefixes.emplace_back(p);
  HttpHeaders lease{{protocol::kLeaseHeader, lease_}};
  std::weak_ptr<bool> weak = alive_;
  auto id = std::make_shared<uint64_t>(0);
  *id = client_.post_json(
      protocol::agent_job_path(job_, protocol::kCacheLookup), json::object{{"key", key}, {"restore_keys", prefixes}},
      kLookupTimeout,
      [this, weak, id, lease, done = std::move(done)](const boost::system::error_code& ec, HttpReply reply) mutable {
        if (weak.expired()) return;
        in_flight_.erase(*id);
        if (!ec && reply.status == 404) return done(std::nullopt, "");
        if (ec || reply.status != 200) return done(std::nullopt, reply_failure(ec, reply));
        boost::system::error_code jec;
        json::value found = json::parse(reply.body, jec);
        // A server's answer, checked before anything reads it (at() would throw on the io thread).
        const json::object* obj = found.if_object();
        const json::value* found_key = obj ? obj->if_contains("key") : nullptr;
        const json::value* sha256 = obj ? obj->if_contains("sha256") : nullptr;
        const json::value* bytes = obj ? obj->if_contains("size") : nullptr;
        if (jec || !found_key || !found_key->is_string() || !sha256 || !sha256->is_string() || !bytes || (!bytes->is_uint64() && !bytes->is_int64())) {
          return done(std::nullopt, "the server's answer is not a cache entry");
        }
        std::string sha(found.at("sha256").as_string());
        uint64_t size = bytes->is_uint64() ? bytes->as_uint64() : static_cast<uint64_t>(std::max<int64_t>(0, bytes->as_int64()));
        if (!is_sha256_hex(sha)) return done(std::nullopt, "the server's answer is not a cache entry");
        if (size > max_bytes_) {
          return done(std::nullopt, "its entry is larger than this agent's cache size (--cache-size)");
        }
        auto entry = std::make_shared<RemoteCacheEntry>();
        entry->key = std::string(found_key->as_string());
        const json::value* exact = obj->if_contains("exact");
        entry->exact = exact && exact->is_bool() && exact->as_bool();
        entry->tar.reset(::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
        if (!entry->tar) return done(std::nullopt, "cannot make a temporary file in " + dir_.string());
        auto hash = std::make_shared<Sha256>();
        auto got = std::make_shared<uint64_t>(0);
        auto write_failed = std::make_shared<bool>(false);
        auto fetch_id = std::make_shared<uint64_t>(0);
        *fetch_id = client_.stream(
            protocol::agent_job_path(job_, std::string(protocol::kCaches) + "/" + sha), kFetchIdle,
            [entry, hash, got, write_failed, size](std::string_view piece) {
              *got += piece.size();
              if (*got > size) return false;
              hash->update(piece);
              for (size_t off = 0; off < piece.size();) {
                ssize_t n = ::write(entry->tar.get(), piece.data() + off, piece.size() - off);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) {
                  *write_failed = true;
                  return false;
                }
                off += static_cast<size_t>(n);
              }
              return true;
            },
            [this, weak, fetch_id, entry, hash, got, write_failed, size, sha, done = std::move(done)](
                const boost::system::error_code& fec, HttpReply freply) mutable {
              if (weak.expired()) return;
              in_flight_.erase(*fetch_id);
              if (*write_failed) return done(std::nullopt, "cannot write the fetched entry");
              if (fec || freply.status != 200) return done(std::nullopt, reply_failure(fec, freply));
              if (*got != size || hash->hex() != sha) {
                return done(std::nullopt, "the fetched entry does not match its sha256");
              }
              ::lseek(entry->tar.get(), 0, SEEK_SET);
              done(std::move(*entry), "");
            },
            lease);
        in_flight_.insert(*fetch_id);
      },
      lease);
  in_flight_.insert(*id);
}

void CacheClient::upload(const std::string& key, std::shared_ptr<const unique_fd> tar, uint64_t bytes,
                         const std::string& sha256) {
  outbox_.post_file(std::string(protocol::kCaches) + "?key=" + percent_encode(key, false) + "&sha256=" + sha256,
                    std::move(tar), bytes);
}

}  // namespace boxcar::agent
