#include "executors/native/exec_user.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>

namespace boxcar::executors::native {

namespace {

constexpr size_t kMaxEtcFile = 4u << 20;

// The ':'-separated fields of each line that has at least `min_fields`; comments and NIS
// ("+"/"-") lines are skipped.
template <typename F>
void for_each_entry(std::string_view text, size_t min_fields, F&& f) {
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (line.empty() || line[0] == '#' || line[0] == '+' || line[0] == '-') continue;
    std::vector<std::string_view> fields;
    for (;;) {
      size_t colon = line.find(':');
      fields.push_back(line.substr(0, colon));
      if (colon == std::string_view::npos) break;
      line = line.substr(colon + 1);
    }
    if (fields.size() >= min_fields && f(fields)) return;
  }
}

bool parse_id(std::string_view s, uint32_t& out) {
  if (s.empty() || s.size() > 10) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size() && out != UINT32_MAX;
}

bool lists(std::string_view members, std::string_view name) {
  while (!members.empty()) {
    size_t comma = members.find(',');
    if (members.substr(0, comma) == name) return true;
    if (comma == std::string_view::npos) break;
    members = members.substr(comma + 1);
  }
  return false;
}

}  // namespace

std::string resolve_user(std::string_view spec, std::string_view passwd, std::string_view group, ExecUser& out) {
  out = ExecUser{};
  size_t colon = spec.find(':');
  std::string_view user = spec.substr(0, colon);
  std::string_view group_spec = colon == std::string_view::npos ? std::string_view{} : spec.substr(colon + 1);
  if (user.empty() || (colon != std::string_view::npos && group_spec.empty())) {
    return "user \"" + std::string(spec) + "\" is not valid: expected name, uid, name:group or uid:gid";
  }
  uint32_t id = 0;
  bool numeric = parse_id(user, id);
  std::string name;
  bool found = false;
  for_each_entry(passwd, 4, [&](const std::vector<std::string_view>& f) {
    uint32_t uid = 0, gid = 0;
    if (!parse_id(f[2], uid) || !parse_id(f[3], gid)) return false;
    if (numeric ? uid != id : f[0] != user) return false;
    name = f[0];
    out.uid = uid;
    out.gid = gid;
    if (f.size() > 5 && !f[5].empty()) out.home = f[5];
    return found = true;
  });
  if (!found) {
    if (numeric) {
      out.uid = id;
    } else if (user == "root") {
      out.home = "/root";
    } else {
      return "user \"" + std::string(user) + "\" not found in /etc/passwd of the image";
    }
  }
  if (!group_spec.empty()) {
    uint32_t gid = 0;
    bool group_found = parse_id(group_spec, gid);
    if (!group_found) {
      for_each_entry(group, 3, [&](const std::vector<std::string_view>& f) {
        if (f[0] != group_spec || !parse_id(f[2], gid)) return false;
        return group_found = true;
      });
    }
    if (!group_found) return "group \"" + std::string(group_spec) + "\" not found in /etc/group of the image";
    out.gid = gid;
    out.groups = {gid};
    return "";
  }
  if (!name.empty()) {
    for_each_entry(group, 4, [&](const std::vector<std::string_view>& f) {
      uint32_t gid = 0;
      if (parse_id(f[2], gid) && lists(f[3], name)) out.groups.push_back(gid);
      return false;
    });
  }
  return "";
}

std::string read_etc_file(const char* path) {
  std::string text;
  int fd = ::open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return text;
  struct stat st{};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    char buf[65536];
    ssize_t n;
    while (text.size() < kMaxEtcFile && (n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

Failure become_user(const ExecUser& user) {
  if (::setgroups(user.groups.size(), user.groups.data()) != 0) return fail("setgroups");
  if (::setresgid(user.gid, user.gid, user.gid) != 0) return fail("setresgid");
  if (::setresuid(user.uid, user.uid, user.uid) != 0) return fail("setresuid");
  if (user.uid == 0) return ok();
  // Leaving uid 0 emptied permitted and effective; inheritable (a file with inheritable file
  // capabilities would get them back at exec) and ambient are cleared here.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return fail("capabilities ambient");
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &header, data) != 0) return fail("capabilities clear");
  return ok();
}

}  // namespace boxcar::executors::native
