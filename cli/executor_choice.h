// Which executor `boxcar run` uses: the isolated native one by default, `host` on request.
#pragma once

#include <filesystem>
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
};

// `requested` is the --executor flag (default: native). Errors are ErrorCode::usage for a bad
// name and unavailable when the executor cannot run on this host (with the reason and what to
// use instead).
Result<ExecutorChoice> choose_executor(const std::optional<std::string>& requested,
                                       const NativeChoiceOptions& native = {});

}  // namespace boxcar::cli
