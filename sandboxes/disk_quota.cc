#include "sandboxes/disk_quota.h"

#include <boost/asio/post.hpp>

#include "base/size.h"
#include "base/workspace_usage.h"

namespace boxcar::sandboxes {

namespace {

constexpr uint64_t kBlock = 4096;

}  // namespace

void DiskQuota::wrote(uint64_t bytes) {
  uint64_t blocks = (bytes + kBlock - 1) / kBlock * kBlock;
  used_ = blocks > UINT64_MAX - used_ ? UINT64_MAX : used_ + blocks;
}

void DiskQuota::measured(uint64_t bytes, bool too_many_entries) {
  used_ = bytes;
  failures_ = 0;
  why_.clear();
  if (too_many_entries) {
    why_ = "/workspace holds more than " + std::to_string(kMaxEntries) + " files and directories, the most a quota check counts";
  } else if (bytes > limit_) {
    why_ = "/workspace holds " + format_size(bytes) + " or more, past its " + format_size(limit_) + " quota";
  }
}

void DiskQuota::unmeasured(std::string_view error) {
  if (++failures_ < kMaxFailures) return;
  failures_ = kMaxFailures;
  why_ = "/workspace could not be measured " + std::to_string(kMaxFailures) + " times in a row (" + std::string(error) +
         "), which counts as past its quota (directories renamed while it is measured?)";
}

server::HttpResponse DiskQuota::refusal(std::string_view what, uint64_t adding) const {
  std::string why = over() ? why_
                           : "/workspace holds " + format_size(used_) + " of its " + format_size(limit_) +
                                 " quota and this adds " + format_size(adding);
  return server::HttpResponse::error_code(
      507, "quota_exceeded",
      std::string(what) + ": " + why + "; remove files (DELETE /files/...) or create the sandbox with a larger resources.disk_bytes");
}

std::optional<server::HttpResponse> DiskQuota::gate(std::string_view what) const {
  if (!over()) return std::nullopt;
  return refusal(what);
}

DiskMeter::~DiskMeter() {
  *stop_ = true;
  pool_.join();
}

void DiskMeter::measure(std::filesystem::path workspace, uint64_t limit, std::function<void(Result<Usage>)> done) {
  boost::asio::post(pool_, [this, workspace = std::move(workspace), limit, done = std::move(done), stop = stop_]() mutable {
    if (*stop) return;
    WorkspaceLimits limits{limit, DiskQuota::kMaxEntries, {}};
    auto measured = measure_workspace(workspace, limits, [&stop] { return !*stop; });
    Result<Usage> usage = measured ? Result<Usage>(Usage{measured->bytes, measured->inodes > DiskQuota::kMaxEntries})
                                   : Result<Usage>(measured.error());
    if (*stop) return;
    // The io_context outlives the host that owns this meter; `stop` tells the handler whether
    // the meter (and so the host) is still there.
    boost::asio::post(io_, [done = std::move(done), usage = std::move(usage), stop] {
      if (!*stop) done(std::move(usage));
    });
  });
}

void DiskMeter::hold(std::shared_future<void> released) {
  boost::asio::post(pool_, [released = std::move(released)] { released.wait(); });
}

}  // namespace boxcar::sandboxes
