#include "executors/native/uts.h"

#include <unistd.h>

namespace boxcar::executors::native {

std::string hostname_for(const std::string& step_name) {
  std::string out;
  for (char c : step_name) {
    if (out.size() == 63) break;
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool good = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (good) {
      out += c;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "sandbox" : out;
}

Failure set_hostname(const std::string& hostname) {
  if (::sethostname(hostname.data(), hostname.size()) != 0) return fail("uts hostname");
  if (::setdomainname("", 0) != 0) return fail("uts domainname");
  return ok();
}

}  // namespace boxcar::executors::native
