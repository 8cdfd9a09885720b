// The background processes of one sandbox (SANDBOXES.md §2.4).
#pragma once

namespace boxcar::sandboxes {

class ProcessTable {
 public:
  // Kills every process still running (the sandbox is going away).
  void kill_all() {}
};

}  // namespace boxcar::sandboxes
