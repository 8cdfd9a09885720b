// The shell a step's script runs in when the step names none: bash with pipefail where the
// step's root has bash (so `make test | tee log` fails when make fails), else POSIX sh -e.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace boxcar::agent {

// `<bash> --noprofile --norc -eo pipefail -c` and `/bin/sh -e -c`.
std::vector<std::string> bash_shell(const std::string& bash = "/bin/bash");
std::vector<std::string> sh_shell();

// "/bin/bash" or "/usr/bin/bash", whichever is an executable file in the root made of `layers`
// first, or "" for neither. `layers` are lowest first (as
// images::PulledImage::layers): looked up top layer first; a whiteout (a 0/0 character device)
// or an opaque directory hides what lower layers hold; a symlink on the way (usrmerge's
// bin -> usr/bin) is followed only within the layers, never into the host.
std::string bash_in(const std::vector<std::filesystem::path>& layers);

// The argv a step's script is appended to: `explicit_shell` when the step set one; else
// bash_shell() when the root has bash (the host's /bin or /usr/bin for an empty `layers`, that
// is image = "host"; the image's layers otherwise), else sh_shell().
std::vector<std::string> step_shell(const std::vector<std::string>& explicit_shell,
                                    const std::vector<std::filesystem::path>& layers);

}  // namespace boxcar::agent
