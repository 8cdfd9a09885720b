#include "agent/step_limits.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "base/size.h"
#include "pipeline/load.h"

namespace boxcar::agent {

namespace {

// `key` is the resource, and "max_" + key the limit (the subject the CLI turns into its flag).
Error over(const pipeline::ExpandedPipeline& p, const pipeline::ConcreteStep& cs, const std::string& key,
           const std::string& asked, const std::string& ceiling) {
  pipeline::Diagnostic d{p.file.empty() ? std::string("pipeline") : p.file, cs.step.pos,
                         "step \"" + cs.base_name + "\": resources." + key + " = " + asked +
                             " is over the ceiling of " + ceiling + ": ask for at most " + ceiling};
  return Error{d.to_string(), EINVAL, ErrorCode::limit_exceeded, "max_" + key};
}

}  // namespace

std::string format_cpus(double cpus) {
  std::ostringstream out;
  out << cpus;
  return out.str();
}

uint64_t machine_memory() {
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 4ull << 30;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

double machine_cpus() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<double>(n) : 1.0;
}

Status apply_step_limits(const pipeline::ExpandedPipeline& p, const pipeline::ConcreteStep& cs,
                         const StepLimits& limits, executors::SandboxSpec& spec) {
  const pipeline::Resources& r = cs.step.resources;
  if (r.memory && *r.memory > limits.max_memory) {
    return over(p, cs, "memory", format_size(*r.memory), format_size(limits.max_memory));
  }
  if (r.pids && *r.pids > limits.max_pids) {
    return over(p, cs, "pids", std::to_string(*r.pids), std::to_string(limits.max_pids));
  }
  if (r.cpus && *r.cpus > limits.max_cpus) {
    return over(p, cs, "cpus", format_cpus(*r.cpus), format_cpus(limits.max_cpus));
  }
  if (r.tmp && *r.tmp > limits.max_tmp) {
    return over(p, cs, "tmp", format_size(*r.tmp), format_size(limits.max_tmp));
  }
  spec.memory_bytes = r.memory.value_or(limits.default_memory);
  spec.pids = r.pids.value_or(limits.default_pids);
  spec.cpus = r.cpus.value_or(limits.default_cpus);
  spec.tmp_bytes = r.tmp.value_or(limits.default_tmp);
  spec.shm_bytes = limits.shm;
  return {};
}

std::vector<Error> step_limit_errors(const pipeline::ExpandedPipeline& p, const StepLimits& limits) {
  std::vector<Error> errors;
  std::set<std::string> seen;
  for (const auto& cs : p.steps) {
    executors::SandboxSpec spec;
    Status st = apply_step_limits(p, cs, limits, spec);
    if (!st.ok() && seen.insert(st.error().message).second) errors.push_back(st.error());
  }
  return errors;
}

PreviewTtl preview_ttl_of(const pipeline::ConcreteStep& cs, const StepLimits& limits) {
  Millis asked = cs.step.preview_ttl;
  if (asked <= limits.max_preview_ttl) return {asked, {}};
  return {limits.max_preview_ttl, cs.name + ": preview_ttl " + format_duration(asked) + " is over the ceiling of " +
                                      format_duration(limits.max_preview_ttl) +
                                      ": its previews close after " +
                                      format_duration(limits.max_preview_ttl)};
}

}  // namespace boxcar::agent
