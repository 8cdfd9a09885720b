#include "network/egress_report.h"

#include <algorithm>

namespace boxcar::network {

namespace {

constexpr size_t kNamed = 5;

std::string destination(const RefusedDestination& d) {
  std::string where = d.address.find(':') != std::string::npos ? "[" + d.address + "]" : d.address;
  if (d.port != 0) where += ":" + std::to_string(d.port);
  if (d.protocol != "tcp" && !d.protocol.empty()) where += "/" + d.protocol;
  std::string why;
  if (!d.name.empty()) why = d.name;
  if (!d.reason.empty()) why += (why.empty() ? "" : ": ") + d.reason;
  return why.empty() ? where : where + " (" + why + ")";
}

}  // namespace

std::string describe(const EgressReport& report) {
  if (report.refused_total == 0 && report.refused.empty() && report.refused_names.empty()) return {};
  std::string line = "egress refused:";
  if (!report.refused.empty() || report.refused_total != 0) {
    uint64_t named = 0;
    size_t shown = std::min(report.refused.size(), kNamed);
    for (size_t i = 0; i < shown; ++i) {
      const auto& d = report.refused[i];
      named += d.count;
      line += i == 0 ? " " : ", ";
      line += std::to_string(d.count);
      if (i == 0) line += d.count == 1 ? " connection" : " connections";
      line += " to " + destination(d);
    }
    if (report.refused_total > named) {
      uint64_t rest = report.refused_total - named;
      line += shown == 0 ? " " + std::to_string(rest) + (rest == 1 ? " connection" : " connections")
                         : " and " + std::to_string(rest) + " more";
    }
  }
  if (!report.refused_names.empty()) {
    line += report.refused.empty() && report.refused_total == 0 ? " lookups of " : "; lookups of ";
    size_t shown = std::min(report.refused_names.size(), kNamed);
    for (size_t i = 0; i < shown; ++i) line += (i ? ", " : "") + report.refused_names[i];
    if (report.refused_names.size() > shown) line += " and " + std::to_string(report.refused_names.size() - shown) + " more";
  }
  return line;
}

}  // namespace boxcar::network
