// The background processes of one sandbox (SANDBOXES.md §2.4).
// PLACEHOLDER: the exec piece defines it. Its destructor must kill what still runs.
#pragma once

namespace boxcar::sandboxes {

class ProcessTable {};

}  // namespace boxcar::sandboxes
