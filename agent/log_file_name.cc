#include "agent/log_file_name.h"

namespace boxcar::agent {

std::string safe_file_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '=' || c == '-';
    out += keep ? c : '_';
  }
  if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
  return out;
}

std::string log_file_name(std::string_view step_name, int attempt) {
  std::string file = safe_file_name(step_name);
  if (attempt > 1) file += ".attempt" + std::to_string(attempt);
  return file + ".log";
}

}  // namespace boxcar::agent
