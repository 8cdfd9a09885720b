// Capabilities: the small set a step keeps inside its user namespace (Docker's default set
// without MKNOD, NET_RAW, SETFCAP and SETPCAP); everything else leaves the bounding set.
#pragma once

#include <sys/capability.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "executors/native/facility.h"

namespace boxcar::executors::native {

class CapSet {
 public:
  // The default set, made with libcap in the agent (before any fork).
  static CapSet step_default();
  // The set whose capability numbers are the bits of `mask`: how the kept set reaches the
  // sandbox's init, on its command line.
  static CapSet from_mask(uint64_t mask);
  uint64_t mask() const;
  const std::vector<cap_value_t>& kept() const { return kept_; }
  cap_t caps() const { return caps_.get(); }

 private:
  struct Free {
    void operator()(cap_t c) const { cap_free(c); }
  };
  std::vector<cap_value_t> kept_;
  std::shared_ptr<std::remove_pointer_t<cap_t>> caps_;
};

// In a command's process before exec: drops the rest of the bounding set, clears ambient
// capabilities and sets permitted/effective/inheritable to the kept set.
Failure drop_capabilities(const CapSet& set);

}  // namespace boxcar::executors::native
