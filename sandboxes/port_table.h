// The exposed ports of one sandbox (SANDBOXES.md §2.7).
// PLACEHOLDER: the files piece defines it (with routes_ports.cc).
#pragma once

namespace boxcar::sandboxes {

class PortTable {};

}  // namespace boxcar::sandboxes
