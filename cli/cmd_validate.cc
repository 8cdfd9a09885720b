// boxcar validate: exit 0 for a valid pipeline, 2 with file:line:col errors on stderr.
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/pipeline_file.h"
#include "pipeline/load.h"

namespace boxcar::cli {

int cmd_validate(const Args& args) {
  auto flags = parse_flags(args, {{"--file", true, false, "-f"}, {"--help", false, false, "-h"}});
  if (!flags.ok()) return usage_error("validate", flags.error().message);
  if (flags->has("--help")) {
    std::printf("usage: boxcar validate [--file F]\n");
    return kExitOk;
  }
  if (!flags->positional.empty()) {
    return usage_error("validate", "unexpected argument \"" + flags->positional[0] + "\"");
  }
  auto loaded = load_pipeline_file(flags->get("--file"), std::filesystem::current_path());
  if (!loaded) return kExitUsage;
  auto expanded = pipeline::expand(loaded->pipeline);
  std::printf("%s: ok (%zu steps, %zu after matrix expansion)\n", loaded->path.c_str(),
              loaded->pipeline.steps.size(), expanded.steps.size());
  return kExitOk;
}

}  // namespace boxcar::cli
