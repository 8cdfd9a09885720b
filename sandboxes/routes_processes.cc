// PLACEHOLDER until the processes routes land.
#include "sandboxes/sandbox_host.h"

namespace boxcar::sandboxes {

void add_process_routes(server::Router& /*router*/, SandboxHost& /*host*/) {}

}  // namespace boxcar::sandboxes
