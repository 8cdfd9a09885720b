// The checks create and PATCH /api/v1/sandboxes share (SANDBOXES.md §2.0, §2.1): names, labels,
// `*_ms` durations and the TTL cap. Each refusal is a 400 bad_request naming the field and the
// form it takes.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "server/api.h"

namespace boxcar::server {

HttpResponse sandbox_bad_request(std::string_view message, std::string_view field = {});

// 1-64 characters of letters, digits, _ . - (sandbox names and label keys).
bool valid_sandbox_name(std::string_view name);

// At most 64 labels; keys as valid_sandbox_name, values up to 256 bytes.
std::optional<HttpResponse> check_sandbox_labels(const std::map<std::string, std::string>& labels);

// `field` of `o` when present and not null: a whole number of milliseconds >= 0, into `out`.
std::optional<HttpResponse> read_sandbox_ms(const boost::json::object& o, const char* field, int64_t& out);

// ttl_ms against the server's --sandbox-max-ttl (0 asks for none, which a cap refuses).
std::optional<HttpResponse> check_sandbox_ttl(const ApiContext& ctx, int64_t ttl_ms);

}  // namespace boxcar::server
