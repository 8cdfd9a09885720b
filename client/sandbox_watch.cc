// Files::watch: GET /fs/watch as a stream of WatchEvents (docs/sandboxes.md "Watch").
#include <boost/json.hpp>

#include "base/url.h"
#include "client/answer_fields.h"
#include "client/sandbox_client.h"
#include "client/sandbox_files.h"
#include "client/sse_parser.h"
#include "protocol/json_reader.h"

namespace boxcar::client {

namespace json = boost::json;

Status Files::watch(const std::string& path, const WatchOptions& options,
                    const std::function<bool(const WatchEvent&)>& on_event) {
  std::string target = sandbox_path(sandbox_) + "/fs/watch?path=" + percent_encode(path, false);
  if (options.recursive) target += "&recursive=1";
  if (!options.include.empty()) target += "&include=" + percent_encode(options.include, false);
  if (!options.exclude.empty()) target += "&exclude=" + percent_encode(options.exclude, false);
  SseParser parser;
  std::optional<Error> bad;
  bool ended = false;
  auto handle = [&](const SseEvent& sse) {
    auto data = protocol::parse_json(sse.data);
    if (!data || !data->is_object()) {
      bad = Error{"the server sent a watch event that is not a JSON object", 0, ErrorCode::unavailable};
      return false;
    }
    WatchEvent e;
    e.event = sse.event;
    e.raw = data->as_object();
    e.kind = text_field(e.raw, "kind");
    e.path = text_field(e.raw, "path");
    e.is_dir = bool_field(e.raw, "is_dir");
    e.dropped = int_field(e.raw, "dropped");
    if (e.event == "end") ended = true;
    return on_event(e) && !ended;
  };
  Status st = api_->stream("GET", target, "", [&](std::string_view piece) {
    Status fed = parser.feed(piece, handle);
    if (!fed) bad = fed.error();
    return fed.ok() && !parser.stopped();
  });
  if (bad) return *bad;
  if (!st) return st.error();
  return {};
}

}  // namespace boxcar::client
