#include "executors/oci/seccomp_profile.h"

#include <seccomp.h>

#include <boost/json.hpp>

#include "executors/native/seccomp_filter.h"

namespace boxcar::executors::oci {

std::string seccomp_profile_json() {
  namespace json = boost::json;
  json::array syscalls;
  for (const native::SeccompRule& rule : native::seccomp_rules()) {
    if (seccomp_syscall_resolve_name(rule.name.c_str()) == __NR_SCMP_ERROR) continue;
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
