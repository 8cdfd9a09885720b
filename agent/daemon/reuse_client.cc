#include "agent/daemon/reuse_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "base/beneath.h"
#include "base/sha256.h"
#include "base/unique_fd.h"
#include "base/url.h"
#include "protocol/agent_paths.h"
#include "protocol/agent_protocol.h"
#include "protocol/rerun_protocol.h"

namespace boxcar::agent {

namespace json = boost::json;

namespace {

constexpr Millis kReuseTimeout{60'000};
constexpr Millis kFetchIdle{60'000};

// The directory `rel` ("" for the root) under `root`, made as needed, never through a link.
unique_fd make_dirs(int root, const std::string& rel) {
  unique_fd dir = open_beneath(root, "", O_PATH | O_DIRECTORY);
  size_t start = 0;
  while (dir && start < rel.size()) {
    size_t slash = rel.find('/', start);
    std::string part = rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (::mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST) return unique_fd();
    dir = open_beneath(dir.get(), part, O_PATH | O_DIRECTORY);
    start = slash == std::string::npos ? rel.size() : slash + 1;
  }
  return dir;
}

std::string parent_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

std::string leaf_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

struct ReuseClient::Restore {
  std::string step;
  unique_fd root;
  std::vector<protocol::ReusedArtifact> files;
  size_t next = 0;
  size_t restored = 0;
  std::function<void(size_t, std::string)> done;
};

ReuseClient::ReuseClient(HttpClient& client, int64_t job, std::string lease, int64_t from_job)
    : client_(client), job_(job), lease_(std::move(lease)), from_job_(from_job) {}

ReuseClient::~ReuseClient() {
  *alive_ = false;
  for (uint64_t id : in_flight_) client_.cancel(id);
}

std::string ReuseClient::origin() const { return "job #" + std::to_string(from_job_); }

void ReuseClient::restore(const std::string& step, const std::filesystem::path& into,
                          std::function<void(size_t, std::string)> done) {
  auto r = std::make_shared<Restore>();
  r->step = step;
  r->done = std::move(done);
  r->root.reset(::open(into.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!r->root) {
    std::string why = "cannot open " + into.string() + ": " + std::strerror(errno);
    return r->done(0, why);
  }
  HttpHeaders lease{{protocol::kLeaseHeader, lease_}};
  std::weak_ptr<bool> weak = alive_;
  auto id = std::make_shared<uint64_t>(0);
  *id = client_.post_json(
      protocol::agent_job_path(job_, protocol::kReuse), protocol::to_json(protocol::ReuseRequest{step, from_job_}),
      kReuseTimeout, [this, weak, id, r](const boost::system::error_code& ec, HttpReply reply) {
        if (weak.expired()) return;
        in_flight_.erase(*id);
        if (ec || reply.status != 200) return r->done(0, reply_failure(ec, reply));
        auto v = protocol::parse_json(reply.body);
        auto listed = v ? protocol::reuse_response_from_json(*v) : Result<protocol::ReuseResponse>(v.error());
        if (!listed) return r->done(0, "the server's answer: " + listed.error().message);
        r->files = std::move(listed->artifacts);
        next_file(r);
      },
      lease);
  in_flight_.insert(*id);
}

// One file or link at a time, in the listing's order (by path).
void ReuseClient::next_file(std::shared_ptr<Restore> r) {
  while (r->next < r->files.size()) {
    const protocol::ReusedArtifact& a = r->files[r->next];
    unique_fd dir = make_dirs(r->root.get(), parent_of(a.path));
    if (!dir) return r->done(r->restored, a.path + ": cannot make its directory: " + std::strerror(errno));
    if (!a.link.empty()) {
      // The listing's targets stay inside the step's artifacts (checked when parsed).
      ::unlinkat(dir.get(), leaf_of(a.path).c_str(), 0);
      if (::symlinkat(a.link.c_str(), dir.get(), leaf_of(a.path).c_str()) != 0) {
        return r->done(r->restored, a.path + ": cannot make the link: " + std::strerror(errno));
      }
      ++r->next;
      ++r->restored;
      continue;
    }
    auto file = std::make_shared<unique_fd>(create_fresh(dir.get(), leaf_of(a.path), 0644));
    if (!*file) return r->done(r->restored, a.path + ": cannot create it: " + std::strerror(errno));
    auto hash = std::make_shared<Sha256>();
    auto got = std::make_shared<uint64_t>(0);
    auto write_failed = std::make_shared<bool>(false);
    uint64_t size = static_cast<uint64_t>(a.size);
    std::weak_ptr<bool> weak = alive_;
    auto id = std::make_shared<uint64_t>(0);
    *id = client_.stream(
        protocol::agent_job_path(job_, std::string(protocol::kArtifacts) + "/" + percent_encode(a.path, true)),
        kFetchIdle,
        [file, hash, got, write_failed, size](std::string_view piece) {
          *got += piece.size();
          if (*got > size) return false;  // more than listed: refused, never written past
          hash->update(piece);
          for (size_t off = 0; off < piece.size();) {
            ssize_t n = ::write(file->get(), piece.data() + off, piece.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
              *write_failed = true;
              return false;
            }
            off += static_cast<size_t>(n);
          }
          return true;
        },
        [this, weak, id, r, hash, got, write_failed, size](const boost::system::error_code& ec, HttpReply reply) {
          if (weak.expired()) return;
          in_flight_.erase(*id);
          const protocol::ReusedArtifact& f = r->files[r->next];
          if (*write_failed) return r->done(r->restored, f.path + ": cannot write it");
          if (ec || reply.status != 200) return r->done(r->restored, f.path + ": " + reply_failure(ec, reply));
          if (*got != size || hash->hex() != f.sha256) {
            return r->done(r->restored, f.path + ": the fetched bytes do not match its size and sha256");
          }
          ++r->next;
          ++r->restored;
          next_file(r);
        },
        {{protocol::kLeaseHeader, lease_}});
    in_flight_.insert(*id);
    return;
  }
  r->done(r->restored, "");
}

}  // namespace boxcar::agent
