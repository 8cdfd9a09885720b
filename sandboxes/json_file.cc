#include "sandboxes/json_file.h"

#include <fstream>
#include <system_error>

#include <boost/json/serialize.hpp>

namespace boxcar::sandboxes {

Status write_json_file(const std::filesystem::path& file, const boost::json::value& value) {
  std::filesystem::path tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << boost::json::serialize(value);
    if (!out) return Error{"cannot write " + tmp.string()};
  }
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec) return Error{"cannot write " + file.string() + ": " + ec.message()};
  return {};
}

}  // namespace boxcar::sandboxes
