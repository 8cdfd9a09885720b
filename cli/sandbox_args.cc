#include "cli/sandbox_args.h"

#include "protocol/sandbox_api.h"

namespace boxcar::cli {

SplitArgs split_at_separator(const std::vector<std::string>& args) {
  SplitArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      out.has_separator = true;
      out.command.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    out.before.push_back(args[i]);
  }
  return out;
}

Result<CommandArgs> command_args(const SplitArgs& split, const std::optional<std::string>& sh) {
  if (sh && split.has_separator) {
    return Error{"give the command either after -- (an argv) or with --sh (a shell line), not both", 0,
                 ErrorCode::usage};
  }
  if (sh) {
    if (sh->empty()) return Error{"--sh needs a command line", 0, ErrorCode::usage};
    return CommandArgs{{}, *sh};
  }
  if (split.command.empty()) {
    return Error{"no command: give it after -- (like `-- python3 -c 'print(1)'`) or as --sh 'CMD'", 0,
                 ErrorCode::usage};
  }
  return CommandArgs{split.command, {}};
}

CopyOperand parse_copy_operand(const std::string& text) {
  size_t colon = text.find(':');
  if (colon != std::string::npos && protocol::valid_sandbox_id(std::string_view(text).substr(0, colon))) {
    return CopyOperand{text.substr(0, colon), text.substr(colon + 1)};
  }
  return CopyOperand{"", text};
}

namespace {

std::string base_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

bool names_directory(const std::string& path) {
  return path.empty() || path.back() == '/' || path == "." || path == "..";
}

}  // namespace

Result<CopyPlan> plan_copy(const std::string& from, const std::string& to) {
  CopyPlan plan;
  plan.from = parse_copy_operand(from);
  plan.to = parse_copy_operand(to);
  bool from_remote = !plan.from.sandbox.empty(), to_remote = !plan.to.sandbox.empty();
  if (from_remote == to_remote) {
    return Error{from_remote ? "both operands are in a sandbox: copy through a local file for now"
                             : "neither operand is in a sandbox: write one as ID:/path (like " +
                                   std::string("abcdefgh2345:/workspace/a.py)"),
                 0, ErrorCode::usage};
  }
  plan.upload = to_remote;
  if (!plan.upload && names_directory(plan.from.path)) {
    return Error{"the source \"" + from + "\" names a directory: cp copies one file", 0, ErrorCode::usage};
  }
  if (plan.upload && plan.from.path.empty()) return Error{"the source path is empty", 0, ErrorCode::usage};
  // "ID:" alone is the sandbox's /workspace; "." and "dir/" are directories: the file keeps its name.
  if (names_directory(plan.to.path)) {
    std::string dir = plan.to.path.empty() ? (plan.upload ? "/workspace/" : "./") : plan.to.path;
    if (dir.back() != '/') dir += '/';
    plan.to.path = dir + base_name(plan.from.path);
  }
  return plan;
}

Result<std::map<std::string, std::string>> parse_pairs(const std::vector<std::string>& items,
                                                        const std::string& flag) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error{flag + " \"" + item + "\": write it as NAME=VALUE", 0, ErrorCode::usage};
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

}  // namespace boxcar::cli
