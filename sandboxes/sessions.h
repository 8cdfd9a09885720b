// Sessions of one sandbox: env and cwd that persist between commands (SANDBOXES.md §2.3).
// PLACEHOLDER: the exec piece defines it.
#pragma once

namespace boxcar::sandboxes {

class Sessions {};

}  // namespace boxcar::sandboxes
