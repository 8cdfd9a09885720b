// PLACEHOLDER: replaced by its piece.
#include "sandboxes/sandbox_host.h"

namespace boxcar::sandboxes {

void add_lifecycle_routes(server::Router& /*router*/, SandboxHost& /*host*/) {}

}  // namespace boxcar::sandboxes
