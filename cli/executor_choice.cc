#include "cli/executor_choice.h"

#include "base/suggest.h"
#include "executors/host/host_executor.h"
#include "executors/native/native_executor.h"
#include "executors/oci/oci_executor.h"

namespace boxcar::cli {

Result<ExecutorChoice> choose_executor(const std::optional<std::string>& requested,
                                       const NativeChoiceOptions& native) {
  std::string name = requested.value_or("native");
  if (native.oci_runtime && name != "oci") {
    return Error{"--oci-runtime only applies to --executor oci", 0, ErrorCode::usage};
  }
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
    if (native.max_image_write) options.max_image_write = *native.max_image_write;
    return ExecutorChoice{name, [options](boost::asio::io_context& io) {
                            return executors::make_native_executor(io, options);
                          }};
  }
  if (name == "oci") {
    executors::OciOptions options;
    if (native.oci_runtime) options.runtime = *native.oci_runtime;
    if (Status st = executors::oci_available(options.runtime); !st.ok()) {
      Error e = st.error();
      if (e.code != ErrorCode::usage) e.message += "; use --executor native, which needs no runtime";
      return e;
    }
    options.allow_host_network = native.allow_host_network;
    if (native.max_image_write) options.max_image_write = *native.max_image_write;
    return ExecutorChoice{name, [options](boost::asio::io_context& io) {
                            return executors::make_oci_executor(io, options);
                          }};
  }
  std::string msg = "unknown executor \"" + name + "\": use native (isolated, the default), oci (the same "
                    "sandbox run by runc) or host";
  if (auto m = closest_match(name, {"host", "native", "oci"})) msg += " (did you mean \"" + *m + "\"?)";
  return Error{msg, 0, ErrorCode::usage};
}

}  // namespace boxcar::cli
