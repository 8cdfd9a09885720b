// RecordingObserver: a RunObserver that keeps what a run reported, for tests of the engine
// (agent/) and of what it drives (previews/). Header-only: its users link the engine anyway.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/run_observer.h"

namespace boxcar::testing {

class RecordingObserver : public agent::RunObserver {
 public:
  void notice(std::string_view text) override { notices.emplace_back(text); }
  void step_started(size_t, std::string_view name, int) override { started.emplace_back(name); }
  void step_line(size_t, std::string_view, agent::Timestamp, std::string_view line, bool) override {
    lines.emplace_back(line);
  }
  void step_finished(size_t, const agent::StepSummary& s) override { finished.push_back(s); }
  void artifact(size_t, std::string_view, std::string_view, uint64_t) override {}
  void pipeline_finished(bool ok, const std::vector<agent::StepSummary>&, Millis) override {
    result = ok;
  }
  // "<name> <host url>", with " (held)" once the pipeline ended and its TTL runs.
  void preview(size_t, std::string_view name, std::string_view url, std::string_view path_url,
               agent::Timestamp until) override {
    previews.push_back(std::string(name) + " " + std::string(url) +
                       (until == agent::Timestamp{} ? "" : " (held)"));
    path_urls.emplace_back(path_url);
  }
  void preview_closed(size_t, std::string_view name) override { closed.emplace_back(name); }

  bool noticed(std::string_view part) const {
    for (const auto& n : notices) {
      if (n.find(part) != std::string::npos) return true;
    }
    return false;
  }

  std::vector<std::string> notices, started, lines, previews, path_urls, closed;
  std::vector<agent::StepSummary> finished;
  std::optional<bool> result;
};

}  // namespace boxcar::testing
