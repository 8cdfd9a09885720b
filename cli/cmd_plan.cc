// boxcar plan: the steps after matrix expansion and what each waits for, as text, JSON or DOT.
#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "base/duration.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/pipeline_file.h"
#include "pipeline/load.h"
#include "pipeline/workspace_stack.h"

namespace boxcar::cli {
namespace {

// Stage of each step: 1 for steps with no needs, else 1 + the deepest need.
std::vector<int> stages(const pipeline::ExpandedPipeline& p) {
  // A validated pipeline is acyclic, so iterating to a fixed point terminates; it does not
  // depend on steps being in dependency order in the file.
  std::vector<int> stage(p.steps.size(), 1);
  bool changed = true;
  while (changed) {
    changed = false;
    for (size_t i = 0; i < p.steps.size(); ++i) {
      for (size_t n : p.steps[i].needs) {
        if (stage[n] + 1 > stage[i]) {
          stage[i] = stage[n] + 1;
          changed = true;
        }
      }
    }
  }
  return stage;
}

const char* when_status(const pipeline::Step& s) {
  if (!s.when) return "success";
  switch (s.when->status) {
    case pipeline::WhenStatus::success: return "success";
    case pipeline::WhenStatus::failure: return "failure";
    case pipeline::WhenStatus::always: return "always";
  }
  return "success";
}

void print_text(const pipeline::ExpandedPipeline& p) {
  auto stage = stages(p);
  size_t width = 4;
  for (const auto& s : p.steps) width = std::max(width, s.name.size());
  std::printf("pipeline %s: %zu steps\n", p.name.empty() ? "(unnamed)" : p.name.c_str(),
              p.steps.size());
  std::printf("%-5s  %-*s  %s\n", "STAGE", static_cast<int>(width), "STEP", "NEEDS");
  std::vector<size_t> order(p.steps.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return stage[a] < stage[b]; });
  for (size_t i : order) {
    std::string needs;
    for (size_t n : p.steps[i].needs) needs += (needs.empty() ? "" : ", ") + p.steps[n].name;
    std::string extra;
    const auto& s = p.steps[i].step;
    if (s.when && s.when->status != pipeline::WhenStatus::success) {
      extra += std::string("  [when.status=") + when_status(s) + "]";
    }
    if (s.allow_failure) extra += "  [allow_failure]";
    std::printf("%-5d  %-*s  %s%s\n", stage[i], static_cast<int>(width), p.steps[i].name.c_str(),
                needs.empty() ? "-" : needs.c_str(), extra.c_str());
    // What the step's /workspace shows, lowest first (pipeline/workspace_stack.h).
    std::string stack = "checkout";
    auto below = pipeline::workspace_stack(p, i);
    for (auto it = below.rbegin(); it != below.rend(); ++it) stack += " < " + p.steps[*it].name;
    std::printf("%-5s  %-*s  workspace: %s < %s\n", "", static_cast<int>(width), "", stack.c_str(),
                p.steps[i].name.c_str());
  }
}

void print_json(const pipeline::ExpandedPipeline& p) {
  auto stage = stages(p);
  boost::json::array steps;
  for (size_t i = 0; i < p.steps.size(); ++i) {
    const auto& cs = p.steps[i];
    boost::json::array needs;
    for (size_t n : cs.needs) needs.push_back(boost::json::string(p.steps[n].name));
    boost::json::object matrix;
    for (const auto& [k, v] : cs.matrix_values) matrix[k] = v;
    steps.push_back(boost::json::object{
        {"name", cs.name},
        {"base_name", cs.base_name},
        {"stage", stage[i]},
        {"needs", std::move(needs)},
        {"matrix", std::move(matrix)},
        {"image", cs.step.image},
        {"timeout_ms", cs.step.timeout.count()},
        {"retry", cs.step.retry},
        {"allow_failure", cs.step.allow_failure},
        {"when_status", when_status(cs.step)},
    });
  }
  boost::json::object doc{{"name", p.name}, {"file", p.file}, {"steps", std::move(steps)}};
  std::printf("%s\n", boost::json::serialize(doc).c_str());
}

std::string dot_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

void print_dot(const pipeline::ExpandedPipeline& p) {
  std::printf("digraph pipeline {\n  rankdir=LR;\n  node [shape=box];\n");
  for (const auto& cs : p.steps) std::printf("  %s;\n", dot_quote(cs.name).c_str());
  for (const auto& cs : p.steps) {
    for (size_t n : cs.needs) {
      std::printf("  %s -> %s;\n", dot_quote(p.steps[n].name).c_str(), dot_quote(cs.name).c_str());
    }
  }
  std::printf("}\n");
}

}  // namespace

int cmd_plan(const Args& args) {
  auto flags = parse_flags(args, {{"--file", true, false, "-f"},
                                  {"--format", true, false, ""},
                                  {"--help", false, false, "-h"}});
  if (!flags.ok()) return usage_error("plan", flags.error().message);
  if (flags->has("--help")) {
    std::printf("usage: boxcar plan [--file F] [--format text|json|dot]\n");
    return kExitOk;
  }
  if (!flags->positional.empty()) {
    return usage_error("plan", "unexpected argument \"" + flags->positional[0] + "\"");
  }
  std::string format = flags->get("--format").value_or("text");
  if (format != "text" && format != "json" && format != "dot") {
    return usage_error("plan", "--format must be text, json or dot, not \"" + format + "\"");
  }
  auto loaded = load_pipeline_file(flags->get("--file"), std::filesystem::current_path());
  if (!loaded) return kExitUsage;
  auto expanded = pipeline::expand(loaded->pipeline);
  if (format == "json") print_json(expanded);
  else if (format == "dot") print_dot(expanded);
  else print_text(expanded);
  return kExitOk;
}

}  // namespace boxcar::cli
