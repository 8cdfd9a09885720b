#include "cli/executor_choice.h"

#include "base/suggest.h"
#include "executors/host/host_executor.h"

namespace boxcar::cli {

Result<ExecutorChoice> choose_executor(const std::optional<std::string>& requested) {
  std::string name = requested.value_or("host");
  if (name == "host") {
    return ExecutorChoice{name, [](boost::asio::io_context& io) {
                            return executors::make_host_executor(io);
                          }};
  }
  std::string msg = "unknown executor \"" + name + "\": use host";
  if (auto m = closest_match(name, {"host", "native"})) msg += " (did you mean \"" + *m + "\"?)";
  return Error{msg, 2};
}

}  // namespace boxcar::cli
