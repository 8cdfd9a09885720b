// What tells pull-request jobs of one head apart, for superseding (both backends).
#pragma once

#include <string>

#include "server/store/migrations.h"

namespace boxcar::server {

// A pull request's identity beside its head: the base branch and its number (a head branch of
// one repository may be proposed into several repositories, and twice into one), from a job's
// env column.
inline std::string pull_request_key(const std::string& env_json) {
  auto env = env_from_json(env_json);
  return env["BOXCAR_PR_BASE"] + "\n" + env["BOXCAR_PR_NUMBER"];
}

}  // namespace boxcar::server
