// init: pid 1 of every sandbox, a separate static program (boxcar-init) that the sandbox's
// first process execs from a sealed memfd once the sandbox is set up (see init_executable.h),
// so no byte of the agent's memory, arguments or environment exists inside a sandbox. It runs
// the commands the agent sends over the control channel, reports each one's wait status, reaps
// orphans, and forwards SIGTERM to everything else in the sandbox.
#pragma once

namespace boxcar::executors::native {

// Where init finds its end of the control channel.
constexpr int kInitControlFd = 3;
// init's name: argv[0], the process name steps see in ps, and the memfd's name.
constexpr const char* kInitName = "boxcar-init";

// boxcar-init's main. Arguments: `--caps=HEX`, the capability numbers (as bits) each command
// keeps. The seccomp filter, namespaces, mounts and hostname are already in place (inherited
// across exec); the environment is empty. Sends Msg::ready, or Msg::failed when its arguments
// are wrong, then serves the channel; exits (which kills the whole pid namespace) when the
// channel closes.
int init_main(int argc, char** argv);

}  // namespace boxcar::executors::native
