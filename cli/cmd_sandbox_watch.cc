// `boxcar sandbox watch ID PATH...`: one line per change under each PATH ("create  /workspace/a"),
// or with --json each event as the server sent it, until Ctrl-C or every PATH is gone. Each PATH
// is its own watch (and connection), the server's cap of 16 per sandbox applies.
#include <cstdio>
#include <optional>
#include <mutex>
#include <thread>

#include <boost/json.hpp>

#include "base/terminal_escape.h"
#include "client/answer_fields.h"
#include "cli/api_token.h"
#include "cli/exit_codes.h"
#include "cli/sandbox_verbs.h"

namespace boxcar::cli {

namespace {
namespace json = boost::json;
constexpr size_t kMaxPaths = 16;
}  // namespace

int sandbox_watch(SandboxCall& c) {
  const std::string id = c.operands[0];
  std::vector<std::string> paths(c.operands.begin() + 1, c.operands.end());
  if (paths.size() > kMaxPaths) {
    return c.usage("at most " + std::to_string(kMaxPaths) + " paths (a sandbox holds 16 watches), not " +
                   std::to_string(paths.size()));
  }
  client::WatchOptions options;
  options.recursive = c.flags.has("--recursive");
  options.include = c.flags.get("--include").value_or("");
  options.exclude = c.flags.get("--exclude").value_or("");
  for (const auto* glob : {&options.include, &options.exclude}) {
    if (glob->size() > 256) return c.usage("--include and --exclude take a glob of at most 256 bytes, like '*.py'");
  }
  std::mutex out;
  std::optional<Error> failure;
  auto run = [&](client::SandboxClient& api, const std::string& path) {
    Status st = api.sandbox(id).files().watch(path, options, [&](const client::WatchEvent& e) {
      std::lock_guard lock(out);
      if (c.json) {
        c.print_json(json::object{{"event", e.event}, {"data", e.raw}});
      } else if (e.event == "change") {
        std::printf("%-9s %s%s\n", e.kind.c_str(), escape_for_terminal(e.path).c_str(), e.is_dir ? "/" : "");
      } else if (e.event == "overflow") {
        std::printf("overflow  %s events dropped (the watch fell behind)\n",
                    e.dropped ? std::to_string(*e.dropped).c_str() : "some");
      } else if (e.event == "watching") {
        std::fprintf(stderr, "boxcar sandbox watch: watching %s\n", escape_for_terminal(path).c_str());
      } else if (e.event == "end") {
        std::fprintf(stderr, "boxcar sandbox watch: %s: %s\n", escape_for_terminal(path).c_str(),
                     escape_for_terminal(client::text_field(e.raw, "reason")).c_str());
      }
      std::fflush(stdout);
      return true;
    });
    if (!st) {
      std::lock_guard lock(out);
      if (!failure) failure = st.error();
    }
  };
  if (paths.size() == 1) {
    run(*c.api, paths[0]);
  } else {
    // The client is synchronous: one connection (and thread) per path.
    auto target = api_target_for(c.flags, "sandbox watch");
    if (!target) return c.usage(target.error().message);
    std::vector<std::thread> threads;
    for (const auto& path : paths) {
      threads.emplace_back([&, path] {
        auto api = client::SandboxClient::connect(target->server, target->token, {target->ca_file});
        if (!api) {
          std::lock_guard lock(out);
          if (!failure) failure = api.error();
          return;
        }
        run(**api, path);
      });
    }
    for (auto& t : threads) t.join();
  }
  if (failure) return c.fail(*failure);
  return kExitOk;
}

}  // namespace boxcar::cli
