// SlotPool: the machine's job network slots (a slot is a /30 and a /64 of the pools), claimed by
// holding flock(2) on state_dir/slot-<n>.lock. Every boxcar process of the machine shares the
// directory, and a lock the kernel released with its dead holder marks a slot free but stale: its
// table and veth may still be there, so whoever claims it next removes them first.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::network {

struct Slot {
  int number = -1;
  unique_fd lock;
};

class SlotPool {
 public:
  // Removes what a dead holder of a slot left (its nftables table, its veth); ignores what is gone.
  using Reclaim = std::function<void(int slot)>;

  SlotPool(std::filesystem::path state_dir, int capacity, Reclaim reclaim)
      : dir_(std::move(state_dir)), capacity_(capacity), reclaim_(std::move(reclaim)) {}

  // Creates the state directory (0700).
  Status prepare() const;
  // A free slot, reclaimed first when its lock file was left by a dead holder;
  // ErrorCode::limit_exceeded when all `capacity` are held. The search starts after the slot
  // this pool claimed last (at a random one first): a slot just released may still have its veth
  // while the kernel takes the old namespace down, and taking it over would wait for that.
  Result<Slot> claim();
  // Frees a slot: its lock file removed while still held, then the lock dropped.
  void release(Slot slot);
  // Claims and releases, reclaiming them, every slot that has a lock file nobody holds, and every
  // slot in `also` (tables and veths found without a lock file).
  void reclaim_free(const std::vector<int>& also);

 private:
  // The slot when its lock was free; stale: the lock file was already there.
  std::optional<Slot> try_claim(int n, bool& stale);
  std::filesystem::path path(int n) const;

  std::filesystem::path dir_;
  int capacity_;
  Reclaim reclaim_;
  int next_ = -1;  // where the next search starts; -1: not chosen yet
};

}  // namespace boxcar::network
