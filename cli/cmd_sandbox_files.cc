// boxcar sandbox cp | ls | cat | mkdir | mv | rm ID PATH | expose | unexpose | ports: a sandbox's
// files (streamed both ways, never held whole) and its exposed ports.
#include <unistd.h>

#include <boost/json.hpp>

#include <cstdio>
#include <filesystem>

#include "base/size.h"
#include "base/terminal_escape.h"
#include "cli/exit_codes.h"
#include "cli/sandbox_verbs.h"
#include "cli/transfer_progress.h"

namespace boxcar::cli {

namespace json = boost::json;
namespace fs = std::filesystem;

int sandbox_cp(SandboxCall& c) {
  auto plan = plan_copy(c.operands[0], c.operands[1]);
  if (!plan) return c.fail(plan.error());
  bool bar = !c.json && ::isatty(STDERR_FILENO) == 1;
  TransferProgress progress(0, bar);
  auto on_progress = [&](uint64_t done, uint64_t total) {
    progress.set_total(total);
    progress.set(done);
  };
  Status st;
  std::string local;
  if (plan->upload) {
    local = plan->from.path;
    st = c.api->sandbox(plan->to.sandbox).files().upload(local, plan->to.path, on_progress);
  } else {
    local = plan->to.path;
    std::error_code ec;
    // An existing local directory keeps the file's name, as cp does.
    if (fs::is_directory(local, ec)) local = (fs::path(local) / fs::path(plan->from.path).filename()).string();
    st = c.api->sandbox(plan->from.sandbox).files().download(plan->from.path, local, on_progress);
  }
  progress.finish();
  if (!st) return c.fail(st.error());
  if (c.json) {
    std::error_code ec;
    auto size = fs::file_size(local, ec);
    c.print_json(json::object{{"from", c.operands[0]}, {"to", plan->upload ? c.operands[1] : local},
                              {"size", ec ? 0 : size}});
  }
  return kExitOk;
}

int sandbox_ls(SandboxCall& c) {
  std::string path = c.operands.size() > 1 ? c.operands[1] : "/workspace";
  auto listing = c.api->sandbox(c.operands[0]).files().list(path, c.flags.has("--recursive"));
  if (!listing) return c.fail(listing.error());
  if (c.json) {
    c.print_json(listing->raw);
    return kExitOk;
  }
  bool is_long = c.flags.has("--long");
  for (const auto& e : listing->entries) {
    std::string name = escape_for_terminal(c.flags.has("--recursive") && !e.path.empty() ? e.path : e.name);
    if (e.type == "dir") name += "/";
    if (!e.target.empty()) name += " -> " + escape_for_terminal(e.target);
    if (is_long) {
      std::printf("%-7s %04o %10s  %-24s %s\n", escape_for_terminal(e.type).c_str(), e.mode & 07777,
                  format_size(e.size).c_str(), escape_for_terminal(e.mtime).c_str(), name.c_str());
    } else {
      std::printf("%s\n", name.c_str());
    }
  }
  if (listing->truncated) std::fprintf(stderr, "boxcar sandbox ls: the listing was cut short by the server's limit\n");
  return kExitOk;
}

int sandbox_cat(SandboxCall& c) {
  // Piped, the bytes pass as they are (cat a binary into a file); on a terminal, escaped.
  bool escape = ::isatty(STDOUT_FILENO) == 1;
  TerminalEscaper escaper;
  Status st = c.api->sandbox(c.operands[0]).files().read_to(c.operands[1], [&](std::string_view piece) {
    if (escape) {
      std::string safe;
      escaper.feed(piece, safe);
      std::fwrite(safe.data(), 1, safe.size(), stdout);
    } else {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
    }
    return std::ferror(stdout) == 0;
  });
  if (escape) {
    std::string rest;
    escaper.finish(rest);
    std::fwrite(rest.data(), 1, rest.size(), stdout);
  }
  std::fflush(stdout);
  if (!st) return c.fail(st.error());
  return kExitOk;
}

int sandbox_mkdir(SandboxCall& c) {
  Status st = c.api->sandbox(c.operands[0]).files().mkdir(c.operands[1], c.flags.has("--parents"));
  if (!st) return c.fail(st.error());
  if (c.json) c.print_json(json::object{{"path", c.operands[1]}});
  return kExitOk;
}

int sandbox_mv(SandboxCall& c) {
  Status st = c.api->sandbox(c.operands[0]).files().move(c.operands[1], c.operands[2], c.flags.has("--force"));
  if (!st) return c.fail(st.error());
  if (c.json) c.print_json(json::object{{"from", c.operands[1]}, {"to", c.operands[2]}});
  return kExitOk;
}

int sandbox_rm_path(SandboxCall& c) {
  Status st = c.api->sandbox(c.operands[0]).files().remove(c.operands[1], c.flags.has("--recursive"));
  if (!st) return c.fail(st.error());
  if (c.json) c.print_json(json::object{{"removed", c.operands[1]}});
  return kExitOk;
}

namespace {

Result<int> port_operand(const SandboxCall& c) {
  size_t port = 0;
  if (!parse_count(c.operands[1], 65535, port)) {
    return Error{"\"" + c.operands[1] + "\" is not a port (1-65535)", 0, ErrorCode::usage};
  }
  return static_cast<int>(port);
}

}  // namespace

int sandbox_expose(SandboxCall& c) {
  auto port = port_operand(c);
  if (!port) return c.fail(port.error());
  auto p = c.api->sandbox(c.operands[0]).ports().expose(*port, c.flags.get("--name").value_or(""));
  if (!p) return c.fail(p.error());
  if (c.json) {
    c.print_json(p->raw);
  } else {
    std::printf("%s\n", escape_for_terminal(p->url).c_str());
  }
  return kExitOk;
}

int sandbox_unexpose(SandboxCall& c) {
  auto port = port_operand(c);
  if (!port) return c.fail(port.error());
  Status st = c.api->sandbox(c.operands[0]).ports().unexpose(*port);
  if (!st) return c.fail(st.error());
  if (c.json) c.print_json(json::object{{"unexposed", *port}});
  return kExitOk;
}

int sandbox_ports(SandboxCall& c) {
  auto ports = c.api->sandbox(c.operands[0]).ports().list();
  if (!ports) return c.fail(ports.error());
  if (c.json) {
    json::array a;
    for (const auto& p : *ports) a.push_back(p.raw);
    c.print_json(json::object{{"ports", std::move(a)}});
    return kExitOk;
  }
  std::printf("%-6s  %-12s  %s\n", "PORT", "NAME", "URL");
  for (const auto& p : *ports) {
    std::printf("%-6d  %-12s  %s\n", p.port, escape_for_terminal(p.name.empty() ? "-" : p.name).c_str(),
                escape_for_terminal(p.url).c_str());
  }
  return kExitOk;
}

}  // namespace boxcar::cli
