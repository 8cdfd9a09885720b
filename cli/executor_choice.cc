#include "cli/executor_choice.h"

#include "base/suggest.h"
#include "executors/host/host_executor.h"
#include "executors/native/native_executor.h"

namespace boxcar::cli {

Result<ExecutorChoice> choose_executor(const std::optional<std::string>& requested,
                                       const NativeChoiceOptions& native) {
  std::string name = requested.value_or("native");
  if (name == "host") {
    return ExecutorChoice{name, [](boost::asio::io_context& io) {
                            return executors::make_host_executor(io);
                          }};
  }
  if (name == "native") {
    if (Status st = executors::native_available(); !st.ok()) {
      return Error{st.error().message + "; use --executor host to run steps without isolation",
                   st.error().err, ErrorCode::unavailable};
    }
    executors::NativeOptions options;
    options.allow_host_network = native.allow_host_network;
    if (!native.state_dir.empty()) options.state_dir = native.state_dir;
    return ExecutorChoice{name, [options](boost::asio::io_context& io) {
                            return executors::make_native_executor(io, options);
                          }};
  }
  std::string msg = "unknown executor \"" + name + "\": use native (isolated, the default) or host";
  if (auto m = closest_match(name, {"host", "native"})) msg += " (did you mean \"" + *m + "\"?)";
  return Error{msg, 0, ErrorCode::usage};
}

}  // namespace boxcar::cli
