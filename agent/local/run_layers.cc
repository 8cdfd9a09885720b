#include "agent/local/run_layers.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cstring>

namespace boxcar::agent {

namespace fs = std::filesystem;

namespace {

// A lock nobody holds: its run died (a live run holds its lock until it ends).
void remove_dead_runs(const fs::path& base) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base, ec)) {
    const fs::path& p = entry.path();
    if (p.extension() != ".lock") continue;
    unique_fd fd(::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
    fs::path dir = p;
    dir.replace_extension();
    std::error_code ignored;
    fs::remove_all(dir, ignored);
    fs::remove(p, ignored);
  }
}

}  // namespace

Result<RunLayers> RunLayers::claim(const fs::path& base, const std::string& run_id) {
  std::error_code ec;
  fs::create_directories(base, ec);
  if (ec) return Error{"cannot create the layers directory " + base.string() + ": " + ec.message(), ec.value()};
  fs::permissions(base, fs::perms::owner_all, ec);
  remove_dead_runs(base);
  RunLayers r;
  r.dir_ = base / run_id;
  r.lock_path_ = base / (run_id + ".lock");
  r.lock_.reset(::open(r.lock_path_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!r.lock_ || ::flock(r.lock_.get(), LOCK_EX | LOCK_NB) != 0) {
    return Error{"cannot lock " + r.lock_path_.string() + ": " + std::strerror(errno), errno};
  }
  return r;
}

RunLayers::~RunLayers() {
  if (!lock_) return;  // moved from
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::remove(lock_path_, ec);
}

}  // namespace boxcar::agent
