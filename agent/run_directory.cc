#include "agent/run_directory.h"

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <random>

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

Result<RunDirectory> RunDirectory::create(const std::filesystem::path& workspace) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  std::random_device rd;
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%04x", rd() & 0xffff);

  RunDirectory dir;
  dir.id_ = std::string(stamp) + "-" + suffix;
  dir.root_ = workspace / ".boxcar" / "runs" / dir.id_;
  std::error_code ec;
  std::filesystem::create_directories(dir.logs(), ec);
  if (!ec) std::filesystem::create_directories(dir.artifacts(), ec);
  if (ec) {
    return Error{"cannot create run directory " + dir.root_.string() + ": " + ec.message(),
                 ec.value()};
  }
  // Resolved once, before any step runs, so a step cannot redirect it through a symlink later.
  dir.root_ = std::filesystem::canonical(dir.root_, ec);
  if (ec) return Error{"cannot resolve run directory: " + ec.message(), ec.value()};
  return dir;
}

std::string log_file_name(std::string_view step_name, int attempt) {
  std::string file = safe_file_name(step_name);
  if (attempt > 1) file += ".attempt" + std::to_string(attempt);
  return file + ".log";
}

std::filesystem::path RunDirectory::log_file(std::string_view step_name, int attempt) const {
  return logs() / log_file_name(step_name, attempt);
}

Status RunDirectory::write_summary(bool success, const std::vector<StepSummary>& steps,
                                   Millis duration) const {
  boost::json::array arr;
  for (const auto& s : steps) {
    arr.push_back(boost::json::object{
        {"name", s.name},
        {"status", pipeline::to_string(s.state)},
        {"duration_ms", s.duration.count()},
        {"reason", s.reason},
        {"exit_code", s.exit_code},
        {"attempts", s.attempts},
        {"allow_failure", s.allow_failure},
    });
  }
  boost::json::object doc{{"id", id_},
                          {"status", success ? "success" : "failed"},
                          {"duration_ms", duration.count()},
                          {"steps", std::move(arr)}};
  std::ofstream out(root_ / "summary.json");
  out << boost::json::serialize(doc) << "\n";
  if (!out) return Error{"cannot write " + (root_ / "summary.json").string()};
  return {};
}

}  // namespace boxcar::agent
