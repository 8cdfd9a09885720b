// boxcar-init's entry point (see init.h); built as a static program and embedded in the agent.
#include "executors/native/init.h"

int main(int argc, char** argv) { return boxcar::executors::native::init_main(argc, argv); }
