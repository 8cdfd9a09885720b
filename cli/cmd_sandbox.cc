// boxcar sandbox: the sandbox API from the command line (docs/sandboxes.md). A table of verbs
// with "did you mean"; every verb takes --server, --token and --json; the lifecycle verbs
// (create, list, get, rm) are here, the others in cmd_sandbox_exec.cc and cmd_sandbox_files.cc.
#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "base/duration.h"
#include "base/suggest.h"
#include "base/terminal_escape.h"
#include "cli/api_client.h"
#include "cli/api_token.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/sandbox_verbs.h"

namespace boxcar::cli {

namespace json = boost::json;

namespace {

struct Verb {
  const char* name;
  int (*run)(SandboxCall&);
  size_t min_operands, max_operands;
  std::vector<FlagSpec> flags;
  const char* usage;
  const char* summary;
};

const FlagSpec kExecFlags[] = {{"--cwd", true, false, ""},     {"--env", true, true, "-e"},
                               {"--session", true, false, ""}, {"--timeout", true, false, ""},
                               {"--sh", true, false, ""}};

std::vector<FlagSpec> exec_flags(std::vector<FlagSpec> more) {
  more.insert(more.end(), std::begin(kExecFlags), std::end(kExecFlags));
  return more;
}

const std::vector<Verb>& verbs() {
  static const std::vector<Verb> table = {
      {"create", sandbox_create, 0, 0,
       {{"--name", true, false, ""}, {"--reuse", false, false, ""}, {"--memory", true, false, ""},
        {"--cpus", true, false, ""}, {"--pids", true, false, ""}, {"--tmp", true, false, ""},
        {"--disk", true, false, ""}, {"--ttl", true, false, ""}, {"--label", true, true, ""},
        {"--env", true, true, "-e"}, {"--network", true, false, ""}},
       "create [--name N [--reuse]] [--memory 1GiB] [--cpus 1] [--pids 1024] [--tmp 256MiB]\n"
       "       [--disk 4GiB] [--ttl 24h] [--label k=v]... [--env K=V]... [--network job|none]",
       "create a sandbox; prints its id"},
      {"list", sandbox_list, 0, 0,
       {{"--state", true, false, ""}, {"--label", true, true, ""}, {"--name", true, false, ""}},
       "list [--state S] [--label k=v]... [--name N]", "list your sandboxes"},
      {"get", sandbox_get, 1, 1, {}, "get ID", "show one sandbox"},
      {"rm", sandbox_rm, 1, 2, {{"--recursive", false, false, "-r"}},
       "rm ID | rm [-r] ID PATH", "delete a sandbox (one operand), or a file in it (two)"},
      {"pause", sandbox_state, 1, 1, {}, "pause ID", "freeze a sandbox's processes (memory kept; any request thaws it)"},
      {"resume", sandbox_state, 1, 1, {}, "resume ID", "thaw a paused sandbox, or start a stopped one again"},
      {"stop", sandbox_state, 1, 1, {}, "stop ID", "end a sandbox's processes (/workspace kept; the next request starts it)"},
      {"metrics", sandbox_metrics, 1, 1, {}, "metrics ID", "show what a sandbox uses (does not wake a paused one)"},
      {"exec", sandbox_exec, 1, 1, exec_flags({{"--interactive", false, false, "-i"}}),
       "exec ID [--cwd D] [--env K=V]... [--session S] [--timeout 30s] [-i] -- ARGV... | --sh 'CMD'",
       "run a command to its end; exits with its code (124 timeout, 128+N signal N)"},
      {"spawn", sandbox_spawn, 1, 1, exec_flags({{"--id", true, false, ""}}),
       "spawn ID [--id P] [--cwd D] [--env K=V]... [--session S] [--timeout D] -- ARGV... | --sh 'CMD'",
       "start a background process; prints its id"},
      {"ps", sandbox_ps, 1, 1, {}, "ps ID", "list a sandbox's processes"},
      {"logs", sandbox_logs, 2, 2, {{"--follow", false, false, "-f"}}, "logs [-f] ID P",
       "print a process's output (-f: follow it live)"},
      {"kill", sandbox_kill, 2, 2, {{"--signal", true, false, "-s"}}, "kill [--signal S] ID P",
       "stop a process (TERM to its tree, then KILL), or send it one signal"},
      {"wait", sandbox_wait, 2, 2,
       {{"--exit", false, false, ""}, {"--log", true, false, ""}, {"--port", true, false, ""},
        {"--http", true, false, ""}, {"--timeout", true, false, ""}},
       "wait ID P (--exit | --log REGEX | --port N [--http /path]) [--timeout 30s]",
       "wait for a process to exit, print a line, or listen"},
      {"cp", sandbox_cp, 2, 2, {}, "cp SRC DST   (one of them ID:/path)",
       "copy a file into or out of a sandbox (streamed)"},
      {"ls", sandbox_ls, 1, 2, {{"--long", false, false, "-l"}, {"--recursive", false, false, "-R"}},
       "ls [-l] [-R] ID [PATH]", "list a directory (default /workspace)"},
      {"cat", sandbox_cat, 2, 2, {}, "cat ID PATH", "print a file"},
      {"mkdir", sandbox_mkdir, 2, 2, {{"--parents", false, false, "-p"}}, "mkdir [-p] ID PATH",
       "make a directory"},
      {"mv", sandbox_mv, 3, 3, {{"--force", false, false, "-f"}}, "mv [-f] ID FROM TO",
       "move or rename (-f: replace TO)"},
      {"watch", sandbox_watch, 2, 17,
       {{"--recursive", false, false, "-r"}, {"--include", true, false, ""}, {"--exclude", true, false, ""}},
       "watch [-r] [--include GLOB] [--exclude GLOB] ID PATH...",
       "print each change under PATH as it happens, until Ctrl-C"},
      {"expose", sandbox_expose, 2, 2, {{"--name", true, false, ""}}, "expose ID PORT [--name N]",
       "publish a port through the preview proxy; prints its URL"},
      {"unexpose", sandbox_unexpose, 2, 2, {}, "unexpose ID PORT", "withdraw a port's URL"},
      {"ports", sandbox_ports, 1, 1, {}, "ports ID", "list a sandbox's exposed ports"},
      {"git", sandbox_git, 2, 2,
       {{"--ref", true, false, ""}, {"--commit", true, false, ""}, {"--dir", true, false, ""},
        {"--replace", false, false, ""}, {"--token-stdin", false, false, ""}, {"--timeout", true, false, ""}},
       "git ID URL [--ref R] [--commit C] [--dir D] [--replace] [--token-stdin] [--timeout 10m]",
       "check a repository out into /workspace (default /workspace/<repo name>)"},
  };
  return table;
}

void print_usage(std::FILE* out) {
  std::fprintf(out, "usage: boxcar sandbox VERB [flags]\n\nverbs:\n");
  for (const auto& v : verbs()) std::fprintf(out, "  %-9s %s\n", v.name, v.summary);
  std::fprintf(out,
               "\nEvery verb takes --server URL, --token T (BOXCAR_API_TOKEN) and --json (the "
               "server's answer as JSON).\nboxcar sandbox VERB --help shows a verb's flags. Exit "
               "codes: a command's own for exec; 2 bad input\n(usage, not found, refused); 3 the "
               "server could not be reached or failed.\n");
}

}  // namespace

int SandboxCall::fail(const Error& error) const {
  int code = exit_code(error);
  std::fprintf(stderr, "boxcar sandbox %s: %s\n", verb.c_str(), escape_for_terminal(error.message).c_str());
  if (json) {
    json::object o{{"error", error.message}, {"exit_code", code}};
    if (!error.subject.empty()) o["code"] = error.subject;
    print_json(o);
  }
  return code;
}

int SandboxCall::usage(const std::string& message) const {
  return fail(Error{message, 0, ErrorCode::usage});
}

void SandboxCall::print_json(const json::value& v) const {
  std::printf("%s\n", json::serialize(v).c_str());
  std::fflush(stdout);
}

Result<std::chrono::milliseconds> duration_flag(const SandboxCall& c, const std::string& flag) {
  auto text = c.flags.get(flag);
  auto d = text ? parse_duration(*text) : std::nullopt;
  if (!d) {
    return Error{flag + " \"" + text.value_or("") + "\" is not a duration (like 30s, 10m, 1h30m)", 0,
                 ErrorCode::usage};
  }
  return *d;
}

int cmd_sandbox(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(args.empty() ? stderr : stdout);
    return args.empty() ? kExitUsage : kExitOk;
  }
  const Verb* verb = nullptr;
  for (const auto& v : verbs()) {
    if (args[0] == v.name) verb = &v;
  }
  if (!verb) {
    std::vector<std::string> names;
    for (const auto& v : verbs()) names.push_back(v.name);
    std::string msg = "unknown verb \"" + escape_for_terminal(args[0]) + "\"";
    if (auto m = closest_match(args[0], names)) msg += " (did you mean \"" + *m + "\"?)";
    std::fprintf(stderr, "boxcar sandbox: %s\nrun \"boxcar sandbox --help\" for the list of verbs\n",
                 msg.c_str());
    return kExitUsage;
  }
  SandboxCall c;
  c.verb = verb->name;
  c.split = split_at_separator(Args(args.begin() + 1, args.end()));
  std::vector<FlagSpec> specs = verb->flags;
  specs.push_back({"--json", false, false, ""});
  specs.push_back({"--help", false, false, "-h"});
  // Only exec and spawn take a command after "--"; for the others "--" ends the flags.
  bool takes_command = c.verb == "exec" || c.verb == "spawn";
  auto flags = parse_flags(takes_command ? c.split.before : Args(args.begin() + 1, args.end()),
                           with_api_client_flags(specs));
  // Even a usage error answers in JSON when --json was asked for (before any "--").
  c.json = std::find(c.split.before.begin(), c.split.before.end(), "--json") != c.split.before.end();
  if (!flags) return c.usage(flags.error().message + " (see boxcar sandbox " + c.verb + " --help)");
  c.flags = std::move(*flags);
  c.json = c.flags.has("--json");
  if (c.flags.has("--help")) {
    std::printf("usage: boxcar sandbox %s [--server URL] [--token T] [--json]\n%s%s", verb->usage,
                kApiTokenHelp, kConnectionHelp);
    return kExitOk;
  }
  c.operands = c.flags.positional;
  if (c.operands.size() < verb->min_operands || c.operands.size() > verb->max_operands) {
    return c.usage("expected: boxcar sandbox " + std::string(verb->usage));
  }
  auto target = api_target_for(c.flags, "sandbox " + c.verb);
  if (!target) return c.usage(target.error().message);
  auto api = client::SandboxClient::connect(target->server, target->token, {target->ca_file});
  if (!api) return c.fail(api.error());
  c.api = std::move(*api);
  return verb->run(c);
}

namespace {

std::string shown(const json::object& o, const char* key) {
  auto* p = o.if_contains(key);
  if (!p || p->is_null()) return "-";
  return escape_for_terminal(p->is_string() ? std::string(p->as_string()) : json::serialize(*p));
}

}  // namespace

int sandbox_create(SandboxCall& c) {
  client::CreateOptions o;
  o.name = c.flags.get("--name").value_or("");
  o.reuse = c.flags.has("--reuse");
  if (o.reuse && o.name.empty()) return c.usage("--reuse needs --name: it reuses the sandbox of that name");
  o.memory = c.flags.get("--memory").value_or("");
  if (auto cpus = c.flags.get("--cpus")) {
    char* end = nullptr;
    double v = std::strtod(cpus->c_str(), &end);
    if (cpus->empty() || *end != 0 || !(v > 0) || v > 1024) {
      return c.usage("--cpus \"" + *cpus + "\" is not a number of CPUs (like 1 or 0.5)");
    }
    o.cpus = v;
  }
  if (auto pids = c.flags.get("--pids")) {
    size_t n = 0;
    if (!parse_count(*pids, 1 << 22, n)) return c.usage("--pids \"" + *pids + "\" is not a whole number > 0");
    o.pids = static_cast<int64_t>(n);
  }
  o.tmp = c.flags.get("--tmp").value_or("");
  o.disk = c.flags.get("--disk").value_or("");
  if (c.flags.has("--ttl")) {
    // "0" is no TTL at all; anything else a duration.
    if (c.flags.get("--ttl") == "0") {
      o.ttl = std::chrono::milliseconds(0);
    } else {
      auto ttl = duration_flag(c, "--ttl");
      if (!ttl) return c.fail(ttl.error());
      o.ttl = *ttl;
    }
  }
  auto labels = parse_pairs(c.flags.all("--label"), "--label");
  if (!labels) return c.fail(labels.error());
  o.labels = std::move(*labels);
  auto env = parse_pairs(c.flags.all("--env"), "--env");
  if (!env) return c.fail(env.error());
  o.env = std::move(*env);
  o.network = c.flags.get("--network").value_or("");
  if (!o.network.empty() && o.network != "job" && o.network != "none") {
    return c.usage("--network \"" + o.network + "\": use job (egress by the agent's policy) or none");
  }
  auto sb = c.api->create(o);
  if (!sb) return c.fail(sb.error());
  if (c.json) {
    c.print_json(sb->info().raw);
  } else {
    std::printf("%s\n", escape_for_terminal(sb->id()).c_str());
  }
  return kExitOk;
}

int sandbox_list(SandboxCall& c) {
  client::ListFilter f;
  f.state = c.flags.get("--state").value_or("");
  f.name = c.flags.get("--name").value_or("");
  f.labels = c.flags.all("--label");
  if (auto bad = parse_pairs(f.labels, "--label"); !bad) return c.fail(bad.error());
  auto items = c.api->list(f);
  if (!items) return c.fail(items.error());
  if (c.json) {
    json::array a;
    for (const auto& s : *items) a.push_back(s.raw);
    c.print_json(json::object{{"sandboxes", std::move(a)}});
    return kExitOk;
  }
  std::printf("%-12s  %-20s  %-9s  %-24s  %s\n", "ID", "NAME", "STATE", "CREATED", "EXPIRES");
  for (const auto& s : *items) {
    std::printf("%-12s  %-20s  %-9s  %-24s  %s\n", shown(s.raw, "id").c_str(), shown(s.raw, "name").c_str(),
                shown(s.raw, "state").c_str(), shown(s.raw, "created_at").c_str(),
                shown(s.raw, "expires_at").c_str());
  }
  return kExitOk;
}

int sandbox_get(SandboxCall& c) {
  auto sb = c.api->get(c.operands[0]);
  if (!sb) return c.fail(sb.error());
  if (c.json) {
    c.print_json(sb->info().raw);
    return kExitOk;
  }
  for (const char* key : {"id", "name", "state", "image", "agent", "created_at", "last_active_at",
                          "expires_at", "resources", "network", "labels", "ports"}) {
    if (sb->info().raw.contains(key)) std::printf("%-15s %s\n", key, shown(sb->info().raw, key).c_str());
  }
  return kExitOk;
}

int sandbox_rm(SandboxCall& c) {
  // Two operands: a file in the sandbox. One: the sandbox itself (-r there is a slip: refused).
  if (c.operands.size() == 2) return sandbox_rm_path(c);
  if (c.flags.has("--recursive")) {
    return c.usage("-r removes a directory in a sandbox: give its PATH (rm -r ID PATH); `rm ID` "
                   "alone deletes the whole sandbox");
  }
  Status st = c.api->remove(c.operands[0]);
  if (!st) return c.fail(st.error());
  if (c.json) c.print_json(json::object{{"deleted", c.operands[0]}});
  return kExitOk;
}

}  // namespace boxcar::cli
