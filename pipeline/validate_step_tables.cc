// Reading the nested tables of a step: when, resources, service, expose and their ready checks,
// cache.
#include <limits>

#include "base/safe_relative_path.h"
#include "pipeline/cache_key.h"
#include "pipeline/matrix.h"
#include "pipeline/validate.h"

namespace boxcar::pipeline {
namespace {

const std::vector<std::string> kEvents = {"push", "pull_request", "tag", "manual"};
const std::vector<std::string> kStatuses = {"success", "failure", "always"};

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// The tables of an array of tables such as [[step.service]]; anything else is reported.
std::vector<const TomlNode*> tables_of(TableReader& step, std::string_view key) {
  std::vector<const TomlNode*> out;
  const TomlEntry* e = step.entry(key);
  if (!e) return out;
  std::string expected = "an array of tables ([[step." + std::string(key) + "]])";
  if (!e->value.is_array()) {
    step.wrong_type(e->value, key, expected);
    return out;
  }
  for (const TomlNode& item : e->value.array) {
    if (item.is_table()) {
      out.push_back(&item);
    } else {
      step.wrong_type(item, key, expected);
    }
  }
  return out;
}

}  // namespace

std::optional<When> read_when(TableReader& step) {
  const TomlNode* t = step.table("when");
  if (!t) return std::nullopt;
  TableReader w(*t, step.context() + ": when", step.diags());
  w.check_keys({"branch", "event", "status"});
  When when;
  if (auto branches = w.strings("branch", true)) when.branch = std::move(*branches);
  if (const TomlEntry* e = w.entry("event")) {
    std::vector<const TomlNode*> items;
    if (e->value.is_array()) {
      for (const TomlNode& item : e->value.array) items.push_back(&item);
    } else {
      items.push_back(&e->value);
    }
    for (const TomlNode* item : items) {
      if (w.check_choice(*item, "event", kEvents)) when.event.push_back(item->str);
    }
  }
  if (auto s = w.choice("status", kStatuses)) {
    when.status = *s == "failure"  ? WhenStatus::failure
                  : *s == "always" ? WhenStatus::always
                                   : WhenStatus::success;
  }
  return when;
}

void read_resources(TableReader& step, Resources& resources) {
  const TomlNode* t = step.table("resources");
  if (!t) return;
  TableReader r(*t, step.context() + ": resources", step.diags());
  r.check_keys({"memory", "cpus", "pids", "tmp"});
  // The smallest values a sandbox can start with (executors' SandboxSpec checks the same): a
  // step asking less fails here, at its line, not later as a sandbox that cannot be set up.
  auto at_least = [&r](const char* key, uint64_t min, const char* shown) -> std::optional<uint64_t> {
    auto v = r.size(key);
    if (v && *v < min) {
      r.error(r.entry(key)->value.pos, quoted(key) + " must be at least " + shown + ", not " +
                                           quoted(r.entry(key)->value.str));
      return std::nullopt;
    }
    return v;
  };
  if (auto v = at_least("memory", 4ull << 20, "4MiB")) resources.memory = *v;
  if (auto v = at_least("tmp", 1ull << 20, "1MiB")) resources.tmp = *v;
  if (auto v = r.positive_number("cpus")) {
    if (*v < 0.01 || *v > 1024) {
      r.error(r.entry("cpus")->value.pos, "\"cpus\" must be between 0.01 and 1024");
    } else {
      resources.cpus = *v;
    }
  }
  if (auto v = r.integer("pids", 8, std::numeric_limits<int64_t>::max())) {
    resources.pids = static_cast<uint64_t>(*v);
  }
}

std::optional<ReadyCheck> read_ready(TableReader& owner) {
  const TomlNode* t = owner.table("ready");
  if (!t) return std::nullopt;
  TableReader r(*t, owner.context() + ": ready", owner.diags());
  r.check_keys({"tcp", "http", "timeout"});
  ReadyCheck ready;
  if (auto port = r.integer("tcp", 1, 65535)) ready.tcp = static_cast<int>(*port);
  if (auto path = r.string("http")) {
    if (path->empty() || (*path)[0] != '/') {
      r.error(r.entry("http")->value.pos,
              "\"http\" must be a path starting with \"/\", not " + quoted(*path));
    } else {
      ready.http = *path;
    }
  }
  if (auto d = r.duration("timeout")) ready.timeout = *d;
  if (r.has("tcp") == r.has("http")) r.error(t->pos, "set exactly one of \"tcp\" and \"http\"");
  return ready;
}

std::vector<Service> read_services(TableReader& step) {
  std::vector<Service> services;
  int number = 0;
  for (const TomlNode* t : tables_of(step, "service")) {
    ++number;
    const TomlEntry* name_entry = t->find("name");
    std::string context = step.context() + ": service " +
                          (name_entry && name_entry->value.is_string()
                               ? quoted(name_entry->value.str)
                               : "#" + std::to_string(number));
    TableReader r(*t, context, step.diags());
    r.check_keys({"name", "run", "image", "command", "env", "ready"});
    Service service;
    service.pos = t->pos;
    if (auto name = r.string("name")) {
      if (!is_step_name(*name)) {
        r.error(name_entry->value.pos, "invalid name (use 1 to 64 of A-Z a-z 0-9 and _ . -)");
      }
      service.name = *name;
    } else if (!r.has("name")) {
      r.missing("name");
    }
    if (auto image = r.string("image")) {
      if (image->empty() || *image == "host" || image->find_first_of(" \t\n") != std::string::npos) {
        r.error(r.entry("image")->value.pos,
                "\"image\" must be an image reference like \"postgres:16\" (leave it out to run the "
                "service in the step's own sandbox), not " + quoted(*image));
      }
      service.image = *image;
    }
    if (auto run = r.string("run")) {
      service.run = *run;
    } else if (!r.has("run") && !r.has("image")) {
      r.missing("run");
    }
    if (auto command = r.strings("command", false)) {
      if (!r.has("image") || r.has("run")) {
        r.error(r.entry("command")->value.pos,
                "\"command\" replaces an image's Cmd: it needs \"image\" and no \"run\"");
      }
      service.command = std::move(*command);
    }
    if (const TomlNode* env = r.table("env")) {
      TableReader env_reader(*env, context + ": env", step.diags());
      std::map<std::string, SourcePos> positions;
      read_env(env_reader, service.env, positions);
    }
    service.ready = read_ready(r);
    services.push_back(std::move(service));
  }
  return services;
}

std::vector<Expose> read_expose(TableReader& step, const std::string& step_name) {
  std::vector<Expose> exposed;
  int number = 0;
  for (const TomlNode* t : tables_of(step, "expose")) {
    ++number;
    TableReader r(*t, step.context() + ": expose #" + std::to_string(number), step.diags());
    r.check_keys({"port", "name", "ready"});
    Expose expose;
    expose.pos = t->pos;
    if (auto port = r.integer("port", 1, 65535)) {
      expose.port = static_cast<int>(*port);
    } else if (!r.has("port")) {
      r.missing("port");
    }
    expose.name = r.string("name").value_or(step_name);
    // The name becomes BOXCAR_PREVIEW_<NAME> and part of a URL: same rule as step names.
    if (r.has("name") && !is_step_name(expose.name)) {
      r.error(t->find("name")->value.pos, "invalid name (use 1 to 64 of A-Z a-z 0-9 and _ . -)");
    }
    if (auto ready = read_ready(r)) {
      expose.ready = *ready;
    } else {
      expose.ready.tcp = expose.port;
    }
    exposed.push_back(std::move(expose));
  }
  return exposed;
}

namespace {

// A key or restore key: its ${branch} and ${hash:...} parts must parse; ${matrix.x} is checked
// against the axes with the step's other texts (check_matrix).
void check_cache_key(TableReader& r, const TomlNode& value, std::string_view what) {
  std::string key = value.str;
  bool has_refs = !find_matrix_refs(key).empty();
  std::string rest = strip_matrix_refs(key);
  if (rest.empty() && has_refs) return;
  auto parts = parse_cache_key(rest);
  if (!parts) r.error(value.pos, quoted(what) + ": " + parts.error().message);
}

}  // namespace

std::vector<Cache> read_caches(TableReader& step) {
  std::vector<Cache> caches;
  int number = 0;
  for (const TomlNode* t : tables_of(step, "cache")) {
    ++number;
    TableReader r(*t, step.context() + ": cache #" + std::to_string(number), step.diags());
    r.check_keys({"key", "restore_keys", "paths"});
    Cache cache;
    cache.pos = t->pos;
    if (auto key = r.string("key")) {
      check_cache_key(r, r.entry("key")->value, "key");
      cache.key = *key;
    } else if (!r.has("key")) {
      r.missing("key");
    }
    if (const TomlEntry* e = r.entry("restore_keys")) {
      if (auto keys = r.strings("restore_keys", false)) {
        if (keys->size() > kMaxCacheRestoreKeys) {
          r.error(e->value.pos, "\"restore_keys\" has " + std::to_string(keys->size()) +
                                    " prefixes, at most " + std::to_string(kMaxCacheRestoreKeys));
        }
        for (const TomlNode& item : e->value.array) check_cache_key(r, item, "restore_keys");
        cache.restore_keys = std::move(*keys);
      }
    }
    if (const TomlEntry* e = r.entry("paths")) {
      if (auto paths = r.strings("paths", false)) {
        if (paths->empty() || paths->size() > kMaxCachePaths) {
          r.error(e->value.pos, "\"paths\" must list 1 to " + std::to_string(kMaxCachePaths) +
                                    " paths, not " + std::to_string(paths->size()));
        }
        for (size_t i = 0; i < paths->size() && i < e->value.array.size(); ++i) {
          const std::string& p = (*paths)[i];
          std::string rel = p.starts_with("~/") ? p.substr(2) : p;
          if (!safe_relative_path(rel)) {
            r.error(e->value.array[i].pos,
                    "\"paths\": " + quoted(p) +
                        " must be relative to the workspace like \"node_modules\" or under the "
                        "step's home like \"~/.npm\" (not absolute; no \"..\", \".\", empty "
                        "or trailing \"/\" parts; no globs needed: a directory is kept whole)");
          }
        }
        cache.paths = std::move(*paths);
      }
    } else {
      r.missing("paths");
    }
    caches.push_back(std::move(cache));
  }
  if (caches.size() > kMaxCachesPerStep) {
    step.error(step.entry("cache")->value.pos, "at most " + std::to_string(kMaxCachesPerStep) +
                                                   " [[step.cache]] tables, not " +
                                                   std::to_string(caches.size()));
  }
  return caches;
}

}  // namespace boxcar::pipeline
