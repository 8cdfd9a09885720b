// Reading one [[step]] (or [defaults]) table into a Step.
#include <algorithm>
#include <limits>

#include "pipeline/matrix.h"
#include "pipeline/validate.h"

namespace boxcar::pipeline {
namespace {

const std::vector<std::string> kStepKeys = {
    "name",    "run",     "image",   "shell",     "workdir",   "env",     "secrets",
    "timeout", "grace",   "retry",   "retry_on_timeout", "allow_failure", "needs",
    "when",    "matrix",  "resources", "network", "egress", "artifacts", "service", "expose",
    "preview_ttl", "cache"};

const std::vector<std::string> kNoDefault = {"name", "run", "needs", "matrix", "service",
                                             "expose", "cache"};

const char* kIdentifierRule = "[A-Za-z_][A-Za-z0-9_]*";

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

void read_name(TableReader& r, Step& step, StepSource& src) {
  const TomlEntry* e = r.entry("name");
  if (!e) {
    r.missing("name");
    return;
  }
  auto name = r.string("name");
  if (!name) return;
  src.name = e->value.pos;
  src.text["name"] = e->value.pos;
  step.name = *name;
  // ${matrix.x} parts are checked against the axes later; the rest must be a plain name.
  bool has_refs = !find_matrix_refs(*name).empty();
  std::string rest = strip_matrix_refs(*name);
  if (has_refs ? (rest.empty() || is_step_name(rest)) : is_step_name(rest)) return;
  r.error(e->value.pos, "invalid name (use 1 to 64 of A-Z a-z 0-9 and _ . -)");
}

void read_needs(TableReader& r, Step& step, StepSource& src) {
  const TomlEntry* e = r.entry("needs");
  if (!e) return;
  if (!e->value.is_array()) {
    r.wrong_type(e->value, "needs", "an array of strings");
    return;
  }
  for (const TomlNode& item : e->value.array) {
    if (!item.is_string()) {
      r.error(item.pos, "\"needs\" must contain strings, not " + std::string(kind_name(item.kind)));
      continue;
    }
    step.needs.push_back(item.str);
    src.needs.push_back(item.pos);
  }
}

void read_secrets(TableReader& r, Step& step) {
  const TomlEntry* e = r.entry("secrets");
  if (!e) return;
  auto names = r.strings("secrets", false);
  if (!names) return;
  step.secrets.clear();
  for (size_t i = 0; i < names->size(); ++i) {
    if (is_identifier((*names)[i])) {
      step.secrets.push_back((*names)[i]);
    } else {
      r.error(e->value.array[i].pos, "\"secrets\": invalid variable name " + quoted((*names)[i]) +
                                         " (expected " + kIdentifierRule + ")");
    }
  }
}

// egress = ["registry.npmjs.org", "*.pythonhosted.org", "github.com:443"]: the only names the
// step may reach beyond its job (base/host_pattern.h says what a pattern is).
constexpr size_t kMaxEgressNames = 256;

void read_egress(TableReader& r, Step& step) {
  const TomlEntry* e = r.entry("egress");
  if (!e) return;
  auto names = r.strings("egress", false);
  if (!names) return;
  if (names->size() > kMaxEgressNames) {
    r.error(e->value.pos, "\"egress\" lists " + std::to_string(names->size()) + " names; at most " +
                              std::to_string(kMaxEgressNames) + " (use \"*.example.com\" for a whole domain)");
    return;
  }
  std::vector<HostPattern> patterns;
  for (size_t i = 0; i < names->size(); ++i) {
    auto p = parse_host_pattern((*names)[i]);
    if (!p) {
      r.error(e->value.array[i].pos, "\"egress\": " + p.error().message);
      continue;
    }
    patterns.push_back(std::move(*p));
  }
  step.egress = std::move(patterns);
}

void read_matrix(TableReader& r, Step& step) {
  const TomlNode* t = r.table("matrix");
  if (!t) return;
  TableReader m(*t, r.context() + ": matrix", r.diags());
  for (const TomlEntry& axis : t->table) {
    if (!is_identifier(axis.key)) {
      m.error(axis.key_pos, "invalid axis name " + quoted(axis.key) + " (expected " +
                                kIdentifierRule + ")");
      continue;
    }
    if (!axis.value.is_array()) {
      m.wrong_type(axis.value, axis.key, "an array");
      continue;
    }
    if (axis.value.array.empty()) {
      m.error(axis.value.pos, "axis " + quoted(axis.key) + " must not be empty");
      continue;
    }
    std::vector<std::string> values;
    for (const TomlNode& v : axis.value.array) {
      switch (v.kind) {
        case TomlNode::Kind::string: values.push_back(v.str); break;
        case TomlNode::Kind::integer: values.push_back(std::to_string(v.integer)); break;
        case TomlNode::Kind::boolean: values.push_back(v.boolean ? "true" : "false"); break;
        default:
          m.error(v.pos, "values of " + quoted(axis.key) +
                             " must be strings, integers or booleans, not " + kind_name(v.kind));
      }
    }
    step.matrix[axis.key] = std::move(values);
  }
}

void read_shell(TableReader& r, Step& step) {
  auto shell = r.strings("shell", false);
  if (!shell) return;
  if (shell->empty()) {
    r.error(r.entry("shell")->value.pos, "\"shell\" must not be empty");
    return;
  }
  step.shell = std::move(*shell);
}

void read_artifacts(TableReader& r, Step& step) {
  const TomlEntry* e = r.entry("artifacts");
  if (!e) return;
  if (!e->value.is_array()) {
    r.wrong_type(e->value, "artifacts", "an array of strings");
    return;
  }
  step.artifacts.clear();
  for (const TomlNode& item : e->value.array) {
    if (auto p = r.relative_path(item, "artifacts")) step.artifacts.push_back(*p);
  }
}

// The keys a [[step]] and [defaults] share.
void read_common(TableReader& r, Step& step, StepSource& src) {
  if (auto v = r.string("image")) {
    if (v->empty() || v->find_first_of(" \t\n") != std::string::npos) {
      r.error(r.entry("image")->value.pos,
              "\"image\" must be \"host\" or an image reference like \"debian:12\", not " +
                  (v->empty() ? std::string("empty") : "\"" + *v + "\""));
    }
    step.image = *v;
    src.text["image"] = r.entry("image")->value.pos;
  }
  read_shell(r, step);
  if (const TomlEntry* e = r.entry("workdir")) {
    if (auto p = r.relative_path(e->value, "workdir")) step.workdir = *p;
    src.text["workdir"] = e->value.pos;
  }
  if (const TomlNode* t = r.table("env")) {
    TableReader env(*t, r.context() + ": env", r.diags());
    read_env(env, step.env, src.env);
  }
  read_secrets(r, step);
  if (auto d = r.duration("timeout")) step.timeout = *d;
  if (auto d = r.duration("grace")) step.grace = *d;
  if (auto d = r.duration("preview_ttl")) step.preview_ttl = *d;
  if (auto n = r.integer("retry", 0, 10)) step.retry = static_cast<int>(*n);
  if (auto b = r.boolean("retry_on_timeout")) step.retry_on_timeout = *b;
  if (auto b = r.boolean("allow_failure")) step.allow_failure = *b;
  if (r.has("when")) step.when = read_when(r);
  read_resources(r, step.resources);
  if (const TomlEntry* e = r.entry("network")) src.text["network"] = e->value.pos;
  if (auto n = r.choice("network", {"job", "none", "host"})) {
    step.network = *n == "none" ? Network::none : *n == "host" ? Network::host : Network::job;
  }
  read_egress(r, step);
  if (r.has("egress") && r.has("network") && step.network != Network::job) {
    r.error(r.entry("egress")->value.pos,
            "\"egress\" narrows the job network; a step with network = \"" +
                std::string(step.network == Network::none ? "none" : "host") +
                "\" is not on it (remove one of the two)");
  }
  read_artifacts(r, step);
}

}  // namespace

void read_env(TableReader& env_table, EnvMap& env, std::map<std::string, SourcePos>& positions) {
  for (const TomlEntry& e : env_table.node().table) {
    if (!is_identifier(e.key)) {
      env_table.error(e.key_pos, "invalid variable name " + quoted(e.key) + " (expected " +
                                     kIdentifierRule + ")");
      continue;
    }
    if (!e.value.is_string()) {
      env_table.wrong_type(e.value, e.key, "a string");
      continue;
    }
    env[e.key] = e.value.str;
    positions[e.key] = e.value.pos;
  }
}

void read_step(const TomlNode& table, int number, Step& step, StepSource& src,
               Diagnostics& diags) {
  src.table = table.pos;
  src.name = table.pos;
  step.pos = table.pos;
  const TomlEntry* name = table.find("name");
  src.context = name && name->value.is_string() ? "step " + quoted(name->value.str)
                                                : "step #" + std::to_string(number);
  TableReader r(table, src.context, diags);
  r.check_keys(kStepKeys);
  read_name(r, step, src);
  if (auto v = r.string("run")) {
    step.run = *v;
    src.text["run"] = r.entry("run")->value.pos;
  }
  read_needs(r, step, src);
  read_matrix(r, step);
  read_common(r, step, src);
  step.services = read_services(r);
  step.expose = read_expose(r, step.name);
  step.caches = read_caches(r);
  bool image_entrypoint = !step.expose.empty() && step.image != "host";
  if (!r.has("run") && !image_entrypoint) r.missing("run");
}

void read_defaults(const TomlNode& table, Step& step, StepSource& src, Diagnostics& diags) {
  TableReader r(table, "[defaults]", diags);
  r.check_keys(kStepKeys);
  for (const std::string& key : kNoDefault) {
    if (const TomlEntry* e = r.entry(key)) {
      r.error(e->key_pos, quoted(key) + " cannot have a default");
    }
  }
  read_common(r, step, src);
}

}  // namespace boxcar::pipeline
