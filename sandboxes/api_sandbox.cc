#include "sandboxes/api_sandbox.h"

namespace boxcar::sandboxes {

std::vector<std::string> ApiSandbox::base_env() const {
  std::map<std::string, std::string> env{
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOME", "/root"},
      {"LANG", "C.UTF-8"},
      {"TERM", "xterm-256color"},
      {"HOSTNAME", spec_.id},
      {"BOXCAR_SANDBOX", spec_.id},
  };
  for (const auto& [k, v] : spec_.env) env[k] = v;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

}  // namespace boxcar::sandboxes
