#include "agent/daemon/triggers.h"

#include "base/glob.h"

namespace boxcar::agent {

namespace {

bool any_match(const std::vector<std::string>& globs, const std::string& name) {
  for (const auto& g : globs) {
    if (glob_match(g, name)) return true;
  }
  return false;
}

std::string strip(const std::string& ref, const std::string& prefix) {
  return ref.rfind(prefix, 0) == 0 ? ref.substr(prefix.size()) : "";
}

}  // namespace

std::string branch_of(const std::string& ref) {
  if (ref.rfind("refs/", 0) != 0) return ref;  // a short name as given: "main"
  return strip(ref, "refs/heads/");
}

JobBranch job_branch(const std::string& event, const std::string& spec_ref,
                     const std::string& checked_ref, const std::string& commit,
                     const std::map<std::string, std::string>& env, const std::string& off_ref) {
  JobBranch b;
  if (event == "pull_request") {
    auto base = env.find("BOXCAR_PR_BASE");
    if (base == env.end() || base->second.empty()) {
      b.no_branch = "the pull request names no base branch";
      return b;
    }
    b.branch = base->second;
    b.ref = "refs/heads/" + b.branch;
    return b;
  }
  b.ref = checked_ref.empty() ? spec_ref : checked_ref;
  if (!off_ref.empty()) {
    b.no_branch = off_ref;
  } else if (b.ref.empty()) {
    b.no_branch = "the job names commit " + commit.substr(0, 12) + " but no ref";
  } else {
    b.branch = branch_of(b.ref);
  }
  return b;
}

std::string trigger_rejection(const pipeline::Triggers& on, const std::string& event,
                              const std::string& ref) {
  if (!on.declared || event == "manual" || event.empty()) return "";
  std::string no = "[on] does not match " + event + " to " + (ref.empty() ? "the default branch" : ref);
  if (event == "push" || event == "tag") {
    if (!on.push) return no;
    std::string tag = strip(ref, "refs/tags/");
    if (event == "tag" && tag.empty()) tag = ref;
    if (!tag.empty()) return any_match(on.push->tags, tag) ? "" : no;
    // A push filter with only tags admits no branch; with neither it admits every push.
    if (on.push->branches.empty()) return on.push->tags.empty() ? "" : no;
    return any_match(on.push->branches, branch_of(ref)) ? "" : no;
  }
  if (event == "pull_request") {
    if (!on.pull_request) return no;
    if (on.pull_request->branches.empty()) return "";
    return any_match(on.pull_request->branches, branch_of(ref)) ? "" : no;
  }
  return no;
}

}  // namespace boxcar::agent
