// ScratchDir (tests only): a fresh directory under /tmp, removed with everything in it when the
// test ends.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace boxcar::testing {

struct ScratchDir {
  std::filesystem::path dir;
  explicit ScratchDir(const std::string& prefix = "boxcar-test") {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) dir = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};

}  // namespace boxcar::testing
