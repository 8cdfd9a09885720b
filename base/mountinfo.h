// MountInfo: the lines of /proc/<pid>/mountinfo as fields, with the kernel's octal escapes
// undone, so a mount point with a space (written "\040") compares equal to its path.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace boxcar {

struct MountInfo {
  std::string root;           // what of its filesystem the mount shows ("/" for all of it)
  std::string mount_point;
  std::string type;           // "cgroup", "overlay", ...
  std::string source;
  std::string super_options;  // the filesystem's options ("rw,memory" for a v1 cgroup)
};

// Every well-formed line of `text` (the file's contents), in order.
std::vector<MountInfo> parse_mountinfo(std::string_view text);

// Undoes mountinfo's escapes of space, tab, newline and backslash ("\ooo").
std::string unescape_mountinfo(std::string_view field);

}  // namespace boxcar
