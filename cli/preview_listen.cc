#include "cli/preview_listen.h"

#include <cstdio>

namespace boxcar::cli {

Result<std::unique_ptr<agent::PreviewProxy>> open_preview_proxy(
    boost::asio::io_context& io, const std::optional<std::string>& listen,
    const std::optional<std::string>& domain, const std::string& command,
    const std::optional<ConnectionLimits>& limits) {
  std::string dom = domain.value_or("localhost");
  if (dom.empty() || dom.front() == '.' || dom.find_first_of(":/ ") != std::string::npos) {
    return Error{"must be a DNS name like ci.example.com, not \"" + dom + "\"", 0, ErrorCode::usage,
                 "preview_domain"};
  }
  auto proxy = std::make_unique<agent::PreviewProxy>(io, dom);
  if (limits) proxy->set_connection_limits(*limits);
  Status st = proxy->listen(listen.value_or(kDefaultPreviewListen));
  if (st.ok()) return proxy;
  if (listen) return st.error();
  // Several agents on one machine: the first keeps the well-known port, the others take any.
  proxy = std::make_unique<agent::PreviewProxy>(io, dom);
  if (limits) proxy->set_connection_limits(*limits);
  if (Status any = proxy->listen("127.0.0.1:0"); !any.ok()) return any.error();
  std::fprintf(stderr, "boxcar %s: %s; previews are served on 127.0.0.1:%u instead "
                       "(set --preview-listen to choose)\n",
               command.c_str(), st.error().message.c_str(), proxy->port());
  return proxy;
}

}  // namespace boxcar::cli
