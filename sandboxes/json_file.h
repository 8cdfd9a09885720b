// The agent's own JSON files beside a sandbox (meta.json, ports.json): written whole to a temp
// file and renamed over the old one, so a crash never leaves half of one for adopt() to read.
#pragma once

#include <filesystem>

#include <boost/json/value.hpp>

#include "base/result.h"

namespace boxcar::sandboxes {

Status write_json_file(const std::filesystem::path& file, const boost::json::value& value);

}  // namespace boxcar::sandboxes
