#include "server/sandbox_fields.h"

#include <algorithm>
#include <cctype>

#include <boost/json.hpp>

#include "protocol/sandbox_api.h"

namespace boxcar::server {

namespace json = boost::json;

namespace {
constexpr size_t kMaxLabels = 64, kMaxLabelValue = 256;
}  // namespace

HttpResponse sandbox_bad_request(std::string_view message, std::string_view field) {
  return HttpResponse::error_code(400, "bad_request", message, field);
}

bool valid_sandbox_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

std::optional<HttpResponse> read_sandbox_ms(const json::object& o, const char* field, int64_t& out) {
  const json::value* f = o.if_contains(field);
  if (!f || f->is_null()) return std::nullopt;
  if (!f->is_int64() || f->as_int64() < 0 || f->as_int64() > protocol::kMaxSandboxMs) {
    return sandbox_bad_request(std::string(field) + ": expected milliseconds as a whole number from 0 to " +
                                   std::to_string(protocol::kMaxSandboxMs) + " (366 days), got " +
                                   json::serialize(*f),
                               field);
  }
  out = f->as_int64();
  return std::nullopt;
}

std::optional<HttpResponse> check_sandbox_labels(const std::map<std::string, std::string>& labels) {
  if (labels.size() > kMaxLabels) {
    return sandbox_bad_request("labels: at most " + std::to_string(kMaxLabels) + " labels", "labels");
  }
  for (const auto& [k, v] : labels) {
    if (!valid_sandbox_name(k)) {
      return sandbox_bad_request("labels: the key \"" + k.substr(0, 80) +
                                     "\" must be 1-64 characters of letters, digits, _ . -",
                                 "labels");
    }
    if (v.size() > kMaxLabelValue) {
      return sandbox_bad_request("labels." + k + ": longer than " + std::to_string(kMaxLabelValue) + " bytes",
                                 "labels");
    }
  }
  return std::nullopt;
}

std::optional<HttpResponse> check_sandbox_ttl(const ApiContext& ctx, int64_t ttl_ms) {
  int64_t max = ctx.options.sandbox_max_ttl_ms;
  if (max > 0 && (ttl_ms == 0 || ttl_ms > max)) {
    return sandbox_bad_request("ttl_ms: " + (ttl_ms == 0 ? std::string("0 (no TTL)") : std::to_string(ttl_ms)) +
                                   " is over the maximum of " + std::to_string(max) +
                                   " (the server's --sandbox-max-ttl)",
                               "ttl_ms");
  }
  return std::nullopt;
}

}  // namespace boxcar::server
