// PLACEHOLDER: replaced by the host piece.
#include "sandboxes/sandbox_host.h"

namespace boxcar::sandboxes {

struct SandboxHost::Impl {};

}  // namespace boxcar::sandboxes
