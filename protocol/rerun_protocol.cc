#include "protocol/rerun_protocol.h"

#include <boost/json.hpp>

#include "base/link_target.h"
#include "base/safe_relative_path.h"
#include "base/sha256.h"
#include "protocol/json_reader.h"

namespace boxcar::protocol {

namespace json = boost::json;

json::value to_json(const ReuseRequest& r) { return {{"step", r.step}, {"from_job", r.from_job}}; }

json::value to_json(const ReuseResponse& r) {
  json::array a;
  for (const auto& f : r.artifacts) {
    json::object o{{"path", f.path}, {"sha256", f.sha256}, {"size", f.size}};
    if (!f.link.empty()) o["link"] = f.link;
    a.push_back(std::move(o));
  }
  return {{"artifacts", std::move(a)}};
}

Result<ReuseRequest> reuse_request_from_json(const json::value& v) {
  ReuseRequest r;
  JsonReader in(v);
  in.required("step", r.step).required("from_job", r.from_job);
  if (!in.ok()) return in.error();
  if (r.step.empty()) return Error{"\"step\": must not be empty"};
  return r;
}

Result<ReuseResponse> reuse_response_from_json(const json::value& v) {
  ReuseResponse r;
  JsonReader in(v);
  const json::value* list = in.field("artifacts", true);
  if (!in.ok()) return in.error();
  if (!list->is_array()) return Error{"\"artifacts\": expected an array, got " + json_kind(*list)};
  for (size_t i = 0; i < list->get_array().size(); ++i) {
    std::string name = "artifacts[" + std::to_string(i) + "]";
    ReusedArtifact a;
    JsonReader item(list->get_array()[i], name);
    item.required("path", a.path).optional("sha256", a.sha256).optional("size", a.size);
    item.optional("link", a.link);
    if (!item.ok()) return item.error();
    if (!safe_relative_path(a.path)) return Error{name + ": \"path\" is not a clean relative path"};
    if (a.link.empty() ? (!is_sha256_hex(a.sha256) || a.size < 0) : !lexical_link_target(a.path, a.link)) {
      return Error{name + ": not a file (sha256, size) nor a link that stays inside the artifacts"};
    }
    r.artifacts.push_back(std::move(a));
  }
  return r;
}

}  // namespace boxcar::protocol
