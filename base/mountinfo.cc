#include "base/mountinfo.h"

#include <sstream>

namespace boxcar {

std::string unescape_mountinfo(std::string_view s) {
  std::string out;
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && octal(s[i + 2]) &&
        octal(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<MountInfo> parse_mountinfo(std::string_view text) {
  std::vector<MountInfo> mounts;
  std::istringstream lines{std::string(text)};
  for (std::string line; std::getline(lines, line);) {
    // "36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw": optional fields end at
    // "-", then the type, the source and the super options.
    std::istringstream f(line);
    std::string id, parent, devs, root, point, options, word;
    if (!(f >> id >> parent >> devs >> root >> point >> options)) continue;
    while (f >> word && word != "-") {
    }
    if (word != "-") continue;
    MountInfo m;
    if (!(f >> m.type >> m.source >> m.super_options)) continue;
    m.root = unescape_mountinfo(root);
    m.mount_point = unescape_mountinfo(point);
    m.type = unescape_mountinfo(m.type);
    m.source = unescape_mountinfo(m.source);
    mounts.push_back(std::move(m));
  }
  return mounts;
}

}  // namespace boxcar
