// boxcar sandbox exec | spawn | ps | logs | kill | wait: commands and processes in a sandbox.
// Output from the sandbox is untrusted: on a terminal it goes through the TerminalEscaper
// (colours pass, every other control is shown as text); piped, it is passed on byte for byte.
#include <unistd.h>

#include <boost/json.hpp>

#include <cstdio>
#include <iostream>
#include <iterator>

#include "base/terminal_escape.h"
#include "cli/exit_codes.h"
#include "cli/sandbox_verbs.h"

namespace boxcar::cli {

namespace json = boost::json;

namespace {

// What -i may send: the exec request is one JSON body, capped by the server at 16 MiB.
constexpr size_t kMaxStdin = 8u << 20;

// Writes a stream's bytes to our stdout or stderr, escaped when that is a terminal.
class OutputSink {
 public:
  OutputSink(std::FILE* out) : out_(out), escape_(::isatty(::fileno(out)) == 1) {}
  void write(std::string_view bytes) {
    if (escape_) {
      std::string safe;
      escaper_.feed(bytes, safe);
      std::fwrite(safe.data(), 1, safe.size(), out_);
    } else {
      std::fwrite(bytes.data(), 1, bytes.size(), out_);
    }
    std::fflush(out_);
  }
  void finish() {
    if (!escape_) return;
    std::string rest;
    escaper_.finish(rest);
    std::fwrite(rest.data(), 1, rest.size(), out_);
    std::fflush(out_);
  }

 private:
  std::FILE* out_;
  bool escape_;
  TerminalEscaper escaper_;
};

// --cwd, --env, --session and --timeout into the options of exec and spawn.
Result<client::ExecOptions> exec_options(const SandboxCall& c) {
  client::ExecOptions o;
  o.cwd = c.flags.get("--cwd").value_or("");
  auto env = parse_pairs(c.flags.all("--env"), "--env");
  if (!env) return env.error();
  for (auto& [k, v] : *env) o.env[k] = v;
  if (auto s = c.flags.get("--session")) o.session = *s;
  if (c.flags.has("--timeout")) {
    auto t = duration_flag(c, "--timeout");
    if (!t) return t.error();
    o.timeout = *t;
  }
  return o;
}

Result<client::Command> command_of(const SandboxCall& c) {
  auto cmd = command_args(c.split, c.flags.get("--sh"));
  if (!cmd) return cmd.error();
  return cmd->shell.empty() ? client::Command::of_argv(cmd->argv) : client::Command::of_shell(cmd->shell);
}

std::string shown(const json::object& o, const char* key) {
  auto* p = o.if_contains(key);
  if (!p || p->is_null()) return "-";
  return escape_for_terminal(p->is_string() ? std::string(p->as_string()) : json::serialize(*p));
}

}  // namespace

int sandbox_exec(SandboxCall& c) {
  auto command = command_of(c);
  if (!command) return c.fail(command.error());
  auto options = exec_options(c);
  if (!options) return c.fail(options.error());
  if (c.flags.has("--interactive")) {
    std::string in;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) {
      in.append(buf, n);
      if (in.size() > kMaxStdin) {
        return c.usage("stdin is over 8 MiB: copy it in with `boxcar sandbox cp` and redirect from the file");
      }
    }
    options->stdin_data = std::move(in);
  }
  auto sb = c.api->sandbox(c.operands[0]);
  if (c.json) {
    auto r = sb.exec(*command, *options);
    if (!r) return c.fail(r.error());
    c.print_json(r->raw);
    return client::exit_code_of(*r);
  }
  OutputSink out(stdout), err(stderr);
  auto r = sb.exec_stream(*command, *options, [&](const client::OutputEvent& e) {
    if (e.kind == "stdout") out.write(e.data);
    if (e.kind == "stderr") err.write(e.data);
    return true;
  });
  out.finish();
  err.finish();
  if (!r) return c.fail(r.error());
  if (r->outcome == "timeout") {
    std::fprintf(stderr, "boxcar sandbox exec: the command timed out (its process tree was killed)\n");
  } else if (r->outcome == "setup_error") {
    std::fprintf(stderr, "boxcar sandbox exec: the command could not be started: %s\n",
                 shown(r->raw, "message").c_str());
  }
  return client::exit_code_of(*r);
}

int sandbox_spawn(SandboxCall& c) {
  auto command = command_of(c);
  if (!command) return c.fail(command.error());
  auto options = exec_options(c);
  if (!options) return c.fail(options.error());
  client::ProcessSpec spec{*command, *options, c.flags.get("--id").value_or(""), false};
  auto p = c.api->sandbox(c.operands[0]).processes().start(spec);
  if (!p) return c.fail(p.error());
  if (c.json) {
    c.print_json(p->raw);
  } else {
    std::printf("%s\n", escape_for_terminal(p->id).c_str());
  }
  return kExitOk;
}

int sandbox_ps(SandboxCall& c) {
  auto items = c.api->sandbox(c.operands[0]).processes().list();
  if (!items) return c.fail(items.error());
  if (c.json) {
    json::array a;
    for (const auto& p : *items) a.push_back(p.raw);
    c.print_json(json::object{{"processes", std::move(a)}});
    return kExitOk;
  }
  std::printf("%-16s  %-7s  %-9s  %-4s  %s\n", "ID", "PID", "STATUS", "EXIT", "COMMAND");
  for (const auto& p : *items) {
    std::string command = shown(p.raw, "command");
    if (command == "-") {
      command.clear();
      if (auto* a = p.raw.if_contains("argv"); a && a->is_array()) {
        for (const auto& arg : a->as_array()) {
          if (arg.is_string()) command += (command.empty() ? "" : " ") + std::string(arg.as_string());
        }
      }
      command = escape_for_terminal(command);
    }
    std::printf("%-16s  %-7s  %-9s  %-4s  %s\n", shown(p.raw, "id").c_str(), shown(p.raw, "pid").c_str(),
                shown(p.raw, "status").c_str(), shown(p.raw, "exit_code").c_str(), command.c_str());
  }
  return kExitOk;
}

int sandbox_logs(SandboxCall& c) {
  auto procs = c.api->sandbox(c.operands[0]).processes();
  if (!c.flags.has("--follow")) {
    auto text = procs.logs(c.operands[1]);
    if (!text) return c.fail(text.error());
    if (c.json) {
      c.print_json(json::object{{"logs", *text}});
      return kExitOk;
    }
    OutputSink out(stdout);
    out.write(*text);
    out.finish();
    return kExitOk;
  }
  OutputSink out(stdout), err(stderr);
  Status st = procs.follow(c.operands[1], 0, [&](const client::OutputEvent& e) {
    if (c.json) {
      json::object o = e.raw;
      o["event"] = e.kind;
      c.print_json(o);
    } else if (e.kind == "stdout") {
      out.write(e.data);
    } else if (e.kind == "stderr") {
      err.write(e.data);
    }
    return true;
  });
  out.finish();
  err.finish();
  if (!st) return c.fail(st.error());
  return kExitOk;
}

int sandbox_kill(SandboxCall& c) {
  auto procs = c.api->sandbox(c.operands[0]).processes();
  if (auto sig = c.flags.get("--signal")) {
    if (sig->empty()) return c.usage("--signal needs a signal, like TERM, SIGUSR1 or 9");
    Status st = procs.signal(c.operands[1], *sig);
    if (!st) return c.fail(st.error());
    if (c.json) c.print_json(json::object{{"signaled", c.operands[1]}, {"signal", *sig}});
    return kExitOk;
  }
  auto p = procs.kill(c.operands[1]);
  if (!p) return c.fail(p.error());
  if (c.json) {
    c.print_json(p->raw);
  } else {
    std::printf("%s %s\n", escape_for_terminal(p->id).c_str(), escape_for_terminal(p->status).c_str());
  }
  return kExitOk;
}

int sandbox_wait(SandboxCall& c) {
  client::WaitSpec spec;
  int kinds = c.flags.has("--exit") + c.flags.has("--log") + c.flags.has("--port");
  if (kinds != 1) return c.usage("wait for exactly one of --exit, --log REGEX or --port N");
  if (c.flags.has("--http") && !c.flags.has("--port")) return c.usage("--http goes with --port");
  if (c.flags.has("--log")) {
    spec.for_what = "log";
    spec.pattern = *c.flags.get("--log");
  } else if (c.flags.has("--port")) {
    spec.for_what = "port";
    size_t port = 0;
    if (!parse_count(*c.flags.get("--port"), 65535, port)) {
      return c.usage("--port \"" + *c.flags.get("--port") + "\" is not a port (1-65535)");
    }
    spec.port = static_cast<int>(port);
    spec.http = c.flags.get("--http").value_or("");
  }
  if (c.flags.has("--timeout")) {
    auto t = duration_flag(c, "--timeout");
    if (!t) return c.fail(t.error());
    spec.timeout = *t;
  }
  auto r = c.api->sandbox(c.operands[0]).processes().wait(c.operands[1], spec);
  if (!r) return c.fail(r.error());
  if (c.json) c.print_json(r->raw);
  if (!r->met) {
    if (!c.json) {
      std::fprintf(stderr, "boxcar sandbox wait: not met: %s\n",
                   r->reason == "exited" ? "the process exited first" : "timed out");
    }
    return kExitFailed;
  }
  if (!c.json && !r->line.empty()) std::printf("%s\n", escape_for_terminal(r->line).c_str());
  // --exit passes the process's own exit code on, as a shell's wait does.
  if (spec.for_what == "exit" && r->exit_code) return *r->exit_code & 0xff;
  return kExitOk;
}

}  // namespace boxcar::cli
