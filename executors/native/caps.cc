#include "executors/native/caps.h"

#include <linux/capability.h>
#include <sys/prctl.h>

#include <algorithm>

namespace boxcar::executors::native {

CapSet CapSet::step_default() {
  uint64_t mask = 0;
  for (cap_value_t cap : {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_SETGID, CAP_SETUID,
                          CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE}) {
    mask |= 1ull << cap;
  }
  return from_mask(mask);
}

CapSet CapSet::from_mask(uint64_t mask) {
  CapSet set;
  for (cap_value_t cap = 0; cap < 64; ++cap) {
    if (mask & (1ull << cap)) set.kept_.push_back(cap);
  }
  cap_t caps = cap_init();
  cap_set_flag(caps, CAP_EFFECTIVE, static_cast<int>(set.kept_.size()), set.kept_.data(), CAP_SET);
  cap_set_flag(caps, CAP_PERMITTED, static_cast<int>(set.kept_.size()), set.kept_.data(), CAP_SET);
  cap_set_flag(caps, CAP_INHERITABLE, static_cast<int>(set.kept_.size()), set.kept_.data(), CAP_SET);
  set.caps_.reset(caps, Free{});
  return set;
}

uint64_t CapSet::mask() const {
  uint64_t mask = 0;
  for (cap_value_t cap : kept_) mask |= 1ull << cap;
  return mask;
}

Failure drop_capabilities(const CapSet& set) {
  int last = static_cast<int>(cap_max_bits());
  for (int cap = 0; cap < last; ++cap) {
    if (std::find(set.kept().begin(), set.kept().end(), cap) != set.kept().end()) continue;
    if (cap_drop_bound(static_cast<cap_value_t>(cap)) != 0 && errno != EINVAL) return fail("capabilities bounding set");
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return fail("capabilities ambient");
  }
  if (cap_set_proc(set.caps()) != 0) return fail("capabilities set");
  return ok();
}

}  // namespace boxcar::executors::native
