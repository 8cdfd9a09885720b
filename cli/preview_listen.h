// The preview proxy of `boxcar run`, `boxcar agent` and `boxcar serve`: --preview-listen and --preview-domain.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "previews/preview_proxy.h"
#include "base/result.h"

namespace boxcar::cli {

inline constexpr const char* kDefaultPreviewListen = "127.0.0.1:8470";

// Listens on `listen` (ADDR:PORT). Without the flag, on 127.0.0.1:8470, or on a free port of
// 127.0.0.1 when that one is taken (several agents on one machine), saying so on stderr as
// `command`. A --preview-listen the user gave that cannot be bound is an Error (code usage for
// a malformed value, unavailable for a port that cannot be bound). `limits` caps its connections
// (default: the proxy's own, from the open-file limit).
Result<std::unique_ptr<agent::PreviewProxy>> open_preview_proxy(
    boost::asio::io_context& io, const std::optional<std::string>& listen,
    const std::optional<std::string>& domain, const std::string& command,
    const std::optional<ConnectionLimits>& limits = std::nullopt);

}  // namespace boxcar::cli
