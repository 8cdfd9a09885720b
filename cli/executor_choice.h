// Which executor `boxcar run` uses: the isolated native one by default, `host` or `oci` on
// request.
#pragma once

#include <filesystem>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "base/result.h"
#include "executors/executor.h"

namespace boxcar::cli {

struct ExecutorChoice {
  std::string name;
  std::function<std::unique_ptr<executors::Executor>(boost::asio::io_context&)> make;
};

struct NativeChoiceOptions {
  bool allow_host_network = false;   // --allow-host-network
  std::filesystem::path state_dir;   // empty: the executor's default
  std::optional<std::string> oci_runtime;  // --oci-runtime NAME|PATH (only with --executor oci)
  std::optional<uint64_t> max_image_write;  // --max-image-write (native, oci); nullopt: the executor's default
};

// The usage line of the flags above, for each command's --help.
constexpr const char* kExecutorUsage =
    "  --executor native|host|oci: native (the default) isolates each step with namespaces,\n"
    "  cgroups and seccomp; oci runs the same sandbox as an OCI container with --oci-runtime\n"
    "  (runc by default, crun or runsc by name, or a path); host runs steps without isolation\n";

// `requested` is the --executor flag (default: native). Errors are ErrorCode::usage for a bad
// name and unavailable when the executor cannot run on this host (with the reason and what to
// use instead).
Result<ExecutorChoice> choose_executor(const std::optional<std::string>& requested,
                                       const NativeChoiceOptions& native = {});

}  // namespace boxcar::cli
