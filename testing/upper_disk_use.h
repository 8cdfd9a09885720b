// What the agent's disk holds for an image sandbox's writable layer when --max-image-write makes
// it a LoopFs (executors/native/upper_dirs.h): the blocks of its image file, found from the host.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace boxcar::testing {

// The LoopFs below `uppers_dir` (<instance>/<name>/upper) holding `marker`, a file the step
// wrote at its root; empty when none does.
inline std::filesystem::path loop_upper_holding(const std::filesystem::path& uppers_dir, const std::string& marker) {
  std::error_code ec;
  for (const auto& inst : std::filesystem::directory_iterator(uppers_dir, ec)) {
    if (!inst.is_directory()) continue;
    for (const auto& sb : std::filesystem::directory_iterator(inst.path(), ec)) {
      if (std::filesystem::exists(sb.path() / "upper" / marker)) return sb.path();
    }
  }
  return {};
}

// Bytes the disk holds for that LoopFs (its image file's blocks, after writing out what the
// page cache still holds above it); nullopt when no upper holds `marker`.
inline std::optional<uint64_t> loop_upper_disk_use(const std::filesystem::path& uppers_dir, const std::string& marker) {
  std::filesystem::path dir = loop_upper_holding(uppers_dir, marker);
  if (dir.empty()) return std::nullopt;
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::syncfs(fd) != 0) {
    if (fd >= 0) ::close(fd);
    return std::nullopt;
  }
  ::close(fd);
  struct stat st{};
  if (::stat((dir.string() + ".img").c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace boxcar::testing
