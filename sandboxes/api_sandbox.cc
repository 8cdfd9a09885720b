// PLACEHOLDER: replaced by the host piece.
#include "sandboxes/api_sandbox.h"

namespace boxcar::sandboxes {

std::vector<std::string> ApiSandbox::base_env() const { return {}; }

}  // namespace boxcar::sandboxes
