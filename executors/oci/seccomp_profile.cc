#include "executors/oci/seccomp_profile.h"

#include <seccomp.h>

#include <boost/json.hpp>

#include "executors/native/seccomp_filter.h"

namespace boxcar::executors::oci {

int libseccomp_resolve(const char* name) { return seccomp_syscall_resolve_name(name); }

Result<std::string> seccomp_profile_json(SyscallResolver resolve) {
  namespace json = boost::json;
  json::array syscalls;
  for (const native::SeccompRule& rule : native::seccomp_rules()) {
    if (resolve(rule.name.c_str()) < 0) {
      if (rule.nr < 0) continue;  // not on this architecture: native has no number for it either
      return Error{"oci executor: this host's libseccomp does not know the syscall " + rule.name + " (number " +
                       std::to_string(rule.nr) +
                       "), so a runc profile cannot deny it and a step could use it unfiltered; update "
                       "libseccomp (2.5.5 or newer) or use the native executor, which filters it by number",
                   ENOSYS, ErrorCode::unavailable, "oci_seccomp"};
    }
    json::array args;
    for (const native::SeccompCondition& c : rule.conditions) {
      // runc hands value and valueTwo to libseccomp as datum_a and datum_b: the mask first.
      if (c.op == native::SeccompCondition::Op::eq) {
        args.push_back({{"index", c.index}, {"value", c.value}, {"op", "SCMP_CMP_EQ"}});
      } else {
        args.push_back({{"index", c.index}, {"value", c.mask}, {"valueTwo", c.value}, {"op", "SCMP_CMP_MASKED_EQ"}});
      }
    }
    json::object entry{{"names", json::array{json::string(rule.name)}},
                       {"action", "SCMP_ACT_ERRNO"},
                       {"errnoRet", rule.err}};
    if (!args.empty()) entry["args"] = std::move(args);
    syscalls.push_back(std::move(entry));
  }
  // Only x86_64: a syscall of another ABI (int 0x80, x32) does not match the filter's
  // architecture and is killed, as in the native filter.
  json::object profile{{"defaultAction", "SCMP_ACT_ALLOW"},
                       {"architectures", json::array{"SCMP_ARCH_X86_64"}},
                       {"syscalls", std::move(syscalls)}};
  return json::serialize(profile);
}

}  // namespace boxcar::executors::oci
