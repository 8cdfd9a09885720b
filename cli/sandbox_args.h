// The pure parts of `boxcar sandbox`'s arguments: a command after `--` (or --sh), an `ID:/path`
// operand of cp, and the K=V pairs of --env and --label. Errors are usage messages.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace boxcar::cli {

// Arguments split at the first "--": the verb's flags and operands before it, the command after.
struct SplitArgs {
  std::vector<std::string> before;
  std::vector<std::string> command;
  bool has_separator = false;
};
SplitArgs split_at_separator(const std::vector<std::string>& args);

// The command of exec and spawn: the argv after "--", or --sh's shell line; exactly one.
struct CommandArgs {
  std::vector<std::string> argv;
  std::string shell;
};
Result<CommandArgs> command_args(const SplitArgs& split, const std::optional<std::string>& sh);

// A cp operand: "ID:/path" is in a sandbox (ID being a sandbox id, [a-z2-7]{12}); anything else
// is a local path ("./x:y" too: a local path with a colon can always be written so).
struct CopyOperand {
  std::string sandbox;  // "" for a local path
  std::string path;
};
CopyOperand parse_copy_operand(const std::string& text);

// cp's source and destination, checked: exactly one side in a sandbox, a remote path not empty.
// A destination naming a directory (ends with '/' or is ".") gets the source's file name.
struct CopyPlan {
  CopyOperand from, to;
  bool upload = false;  // local -> sandbox
};
Result<CopyPlan> plan_copy(const std::string& from, const std::string& to);

// "K=V" pairs of a repeatable flag into a map; `flag` names it in the error.
Result<std::map<std::string, std::string>> parse_pairs(const std::vector<std::string>& items,
                                                        const std::string& flag);

}  // namespace boxcar::cli
