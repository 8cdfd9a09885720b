#include "network/slot_pool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>

namespace boxcar::network {

std::filesystem::path SlotPool::path(int n) const { return dir_ / ("slot-" + std::to_string(n) + ".lock"); }

Status SlotPool::prepare() const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Error{"job networks: cannot create " + dir_.string() + ": " + ec.message(), ec.value(), ErrorCode::unavailable};
  ::chmod(dir_.c_str(), 0700);
  return {};
}

std::optional<Slot> SlotPool::try_claim(int n, bool& stale) {
  const auto p = path(n);
  for (int attempt = 0; attempt < 4; ++attempt) {
    unique_fd fd(::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    stale = !fd;
    if (!fd) {
      if (errno != EEXIST) return std::nullopt;
      fd.reset(::open(p.c_str(), O_RDWR | O_CLOEXEC));
      if (!fd) continue;  // released meanwhile: create it again
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return std::nullopt;
    // The holder we raced with may have removed the file after we opened it: a lock on an
    // unlinked file guards nothing, so only a lock on the file at the path counts.
    struct stat held {}, at_path {};
    if (::fstat(fd.get(), &held) != 0 || ::stat(p.c_str(), &at_path) != 0 || held.st_ino != at_path.st_ino) continue;
    return Slot{n, std::move(fd)};
  }
  return std::nullopt;
}

Result<Slot> SlotPool::claim() {
  if (next_ < 0) {
    unsigned r = 0;
    if (::getrandom(&r, sizeof r, 0) != sizeof r) r = static_cast<unsigned>(::getpid());
    next_ = static_cast<int>(r % static_cast<unsigned>(capacity_));
  }
  for (int i = 0; i < capacity_; ++i) {
    int n = (next_ + i) % capacity_;
    bool stale = false;
    auto slot = try_claim(n, stale);
    if (!slot) continue;
    if (stale) reclaim_(n);
    next_ = (n + 1) % capacity_;
    return std::move(*slot);
  }
  return Error{"job networks: all " + std::to_string(capacity_) + " slots of the address pool are in use", 0,
               ErrorCode::limit_exceeded, "network_pool"};
}

void SlotPool::release(Slot slot) {
  ::unlink(path(slot.number).c_str());
  slot.lock.reset();
}

void SlotPool::reclaim_free(const std::vector<int>& also) {
  std::set<int> numbers(also.begin(), also.end());
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with("slot-") || !name.ends_with(".lock")) continue;
    try {
      numbers.insert(std::stoi(name.substr(5)));
    } catch (...) {
    }
  }
  for (int n : numbers) {
    if (n < 0 || n >= capacity_) continue;
    bool stale = false;
    auto slot = try_claim(n, stale);
    if (!slot) continue;
    reclaim_(n);
    release(std::move(*slot));
  }
}

}  // namespace boxcar::network
