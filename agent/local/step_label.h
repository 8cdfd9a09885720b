// The `[step] ` label of a step's lines, as `boxcar run` prints them and `boxcar logs` too:
// one colour per step (by its index, cycling through a palette that leaves red and green to
// failure and success) when colour is on, the name escaped for the terminal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace boxcar::agent {

// "[name] ", coloured for step `index` when `color`.
std::string step_label(size_t index, std::string_view name, bool color);

}  // namespace boxcar::agent
