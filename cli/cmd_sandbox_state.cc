// `boxcar sandbox pause|resume|stop ID` and `metrics ID` (SANDBOXES.md §1.3, §2.1).
#include <cstdio>

#include <boost/json.hpp>

#include "cli/exit_codes.h"
#include "cli/sandbox_verbs.h"

namespace boxcar::cli {

namespace json = boost::json;

int sandbox_state(SandboxCall& c) {
  client::Sandbox sb = c.api->sandbox(c.operands[0]);
  Result<client::SandboxInfo> info = c.verb == "pause"    ? sb.pause()
                                     : c.verb == "resume" ? sb.resume()
                                                          : sb.stop();
  if (!info) return c.fail(info.error());
  if (c.json) {
    c.print_json(info->raw);
    return kExitOk;
  }
  std::printf("%s %s\n", info->id.c_str(), info->state.c_str());
  return kExitOk;
}

int sandbox_metrics(SandboxCall& c) {
  auto m = c.api->sandbox(c.operands[0]).metrics();
  if (!m) return c.fail(m.error());
  if (c.json) {
    c.print_json(m->raw);
    return kExitOk;
  }
  auto row = [](const char* key, long long v) { std::printf("%-18s %lld\n", key, v); };
  row("cpu_ms", m->cpu_ms);
  row("memory_bytes", m->memory_bytes);
  row("memory_peak_bytes", m->memory_peak_bytes);
  row("pids", m->pids);
  row("disk_bytes", m->disk_bytes);
  row("oom_kills", m->oom_kills);
  row("processes", m->processes);
  return kExitOk;
}

}  // namespace boxcar::cli
