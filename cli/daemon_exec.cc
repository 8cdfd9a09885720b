// `boxcar serve` and `boxcar agent` in the light `boxcar` binary: both run in boxcar-server,
// which lives beside it (see cli/CMakeLists.txt for why there are two binaries). The process
// keeps its pid, arguments and environment, so signals and supervisors see no difference.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace boxcar::cli {
namespace {

int exec_server_binary(const char* command, const Args& args) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::filesystem::path server = self.parent_path() / "boxcar-server";
  if (ec) {
    std::fprintf(stderr, "boxcar %s: cannot find this binary's directory: %s\n", command,
                 ec.message().c_str());
    return kExitInfra;
  }
  std::vector<std::string> argv_text = {server.string(), command};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(server.c_str(), argv.data());
  std::fprintf(stderr, "boxcar %s: cannot start %s: %s (boxcar-server is built and installed "
                       "beside boxcar)\n",
               command, server.c_str(), std::strerror(errno));
  return kExitInfra;
}

}  // namespace

int cmd_serve(const Args& args) { return exec_server_binary("serve", args); }
int cmd_agent(const Args& args) {
  // The admin subcommands are plain API clients: no need for the daemon binary.
  if (!args.empty() && (args[0] == "revoke" || args[0] == "forget")) {
    return cmd_agent_admin(args[0], Args(args.begin() + 1, args.end()));
  }
  return exec_server_binary("agent", args);
}

}  // namespace boxcar::cli
