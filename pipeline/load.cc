// parse_pipeline: the top level of the file, then the checks across steps.
#include "pipeline/load.h"

#include <limits>

#include "pipeline/validate.h"

namespace boxcar::pipeline {
namespace {

const std::vector<std::string> kTopKeys = {"version", "name", "env", "defaults", "on", "step"};

void read_version(TableReader& top, Pipeline& pipeline) {
  if (!top.has("version")) {
    top.error(top.node().pos, "missing required key \"version\" (add version = 1)");
    return;
  }
  auto v = top.integer("version", std::numeric_limits<int64_t>::min(),
                       std::numeric_limits<int64_t>::max());
  if (!v) return;
  if (*v != 1) {
    top.error(top.entry("version")->value.pos,
              "unsupported version " + std::to_string(*v) + " (this boxcar reads version = 1)");
    return;
  }
  pipeline.version = 1;
}

void read_triggers(TableReader& top, Triggers& on) {
  const TomlNode* t = top.table("on");
  if (!t) return;
  TableReader r(*t, "[on]", top.diags());
  r.check_keys({"push", "pull_request", "cancel_superseded"});
  // cancel_superseded alone says nothing of which events start the pipeline: every push still
  // does. An [on] with no key at all keeps its old meaning (no webhook event starts it).
  on.declared = r.has("push") || r.has("pull_request") || !r.has("cancel_superseded");
  if (auto v = r.boolean("cancel_superseded")) on.cancel_superseded = *v;
  if (const TomlNode* push = r.table("push")) {
    TableReader p(*push, "[on] push", top.diags());
    p.check_keys({"branches", "tags"});
    PushFilter filter;
    if (auto v = p.strings("branches", false)) filter.branches = std::move(*v);
    if (auto v = p.strings("tags", false)) filter.tags = std::move(*v);
    on.push = std::move(filter);
  }
  if (const TomlNode* pr = r.table("pull_request")) {
    TableReader p(*pr, "[on] pull_request", top.diags());
    p.check_keys({"branches"});
    PullRequestFilter filter;
    if (auto v = p.strings("branches", false)) filter.branches = std::move(*v);
    on.pull_request = std::move(filter);
  }
}

void read_steps(TableReader& top, const Step& defaults, const StepSource& defaults_src,
                const Limits& limits, Pipeline& pipeline, std::vector<StepSource>& sources) {
  const TomlEntry* e = top.entry("step");
  if (!e) return;
  const char* expected = "an array of tables ([[step]])";
  if (!e->value.is_array()) {
    top.wrong_type(e->value, "step", expected);
    return;
  }
  // Each step starts as a copy of the defaults: 4,000 short [[step]] tables under a large
  // [defaults].env would take gigabytes before any later check.
  if (!check_step_tables(e->value, defaults, limits, top.diags())) return;
  int number = 0;
  for (const TomlNode& table : e->value.array) {
    ++number;
    if (!table.is_table()) {
      top.wrong_type(table, "step", expected);
      continue;
    }
    Step step = defaults;
    StepSource src = defaults_src;
    read_step(table, number, step, src, top.diags());
    pipeline.steps.push_back(std::move(step));
    sources.push_back(std::move(src));
  }
}

}  // namespace

LoadResult parse_pipeline(std::string_view text, const std::string& file, const Limits& limits,
                          const ImageCheck& image_check) {
  LoadResult result;
  if (auto refused = check_text(text, file, limits)) {
    result.errors.push_back(std::move(*refused));
    return result;
  }
  TomlParse parsed = parse_toml(text, file);
  if (parsed.error) {
    result.errors.push_back(*parsed.error);
    return result;
  }
  Diagnostics diags(file);
  Pipeline pipeline;
  pipeline.file = file;
  TableReader top(*parsed.root, "", diags);
  top.check_keys(kTopKeys, "top-level key");
  read_version(top, pipeline);
  if (auto name = top.string("name")) pipeline.name = *name;

  Step defaults;
  StepSource defaults_src;
  if (const TomlNode* env = top.table("env")) {
    TableReader r(*env, "[env]", diags);
    read_env(r, pipeline.env, defaults_src.env);
  }
  defaults.env = pipeline.env;
  if (const TomlNode* t = top.table("defaults")) read_defaults(*t, defaults, defaults_src, diags);
  read_triggers(top, pipeline.on);

  std::vector<StepSource> sources;
  read_steps(top, defaults, defaults_src, limits, pipeline, sources);
  check_needs(pipeline.steps, sources, diags);
  check_matrix(pipeline.steps, sources, image_check, diags);
  check_limits(pipeline.steps, sources, defaults, defaults_src, limits, diags);

  result.errors = diags.take_sorted();
  if (result.errors.empty()) result.pipeline = std::move(pipeline);
  return result;
}

}  // namespace boxcar::pipeline
