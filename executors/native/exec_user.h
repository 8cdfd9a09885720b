// ExecUser: who a command runs as (ExecRequest::user, Docker's --user), resolved by the
// sandbox's init in the sandbox's own /etc/passwd and /etc/group. init is a static program, so
// the files are parsed here by hand (no NSS).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "executors/native/facility.h"

namespace boxcar::executors::native {

struct ExecUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
  std::string home = "/";     // HOME for a command whose environment has none
};

// Resolves `spec` ("root", "name", "uid", "name:group", "uid:gid", "uid:group", "name:gid"; not
// "", which means "as before": root, nothing looked up) against the texts of /etc/passwd and
// /etc/group. A numeric id needs no entry (then gid 0 and HOME "/", as Docker); a name must have
// one, but for "root". Supplementary groups: the explicit group, or else every group listing the
// user's name. Returns "" or the error, e.g. `user "x" not found in /etc/passwd of the image`.
std::string resolve_user(std::string_view spec, std::string_view passwd, std::string_view group, ExecUser& out);

// A small file of the sandbox's root, e.g. "/etc/passwd": "" when absent or unreadable (then
// only numeric ids resolve). Opened non-blocking, regular files only, at most 4 MiB read.
std::string read_etc_file(const char* path);

// In a command's process, still uid 0 with CAP_SETUID and CAP_SETGID: takes on `user`'s
// groups, gid and uid (all of real, effective, saved). A non-root user then keeps no capability
// at all (permitted, effective, inheritable and ambient cleared), as Docker does.
Failure become_user(const ExecUser& user);

}  // namespace boxcar::executors::native
