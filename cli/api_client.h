// ApiClient: the CLI's synchronous HTTP client for the server's REST API (submit, jobs, logs,
// cancel). One request at a time on one connection; the server URL from --server or
// BOXCAR_SERVER.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace boxcar::cli {

struct ApiReply {
  int status = 0;
  std::string body;
};

class ApiClient {
 public:
  // `base` like "http://127.0.0.1:8080" (no path). Errors name what is wrong with it.
  static Result<ApiClient> create(const std::string& base);

  const std::string& base() const { return base_; }
  // Sent as "Authorization: Bearer <token>" with every request from now on ("" = none).
  void set_token(std::string token) { token_ = std::move(token); }

  // A request with an optional JSON body. Connection failures are Errors that name the server.
  Result<ApiReply> request(const std::string& method, const std::string& target,
                           const std::string& json_body = "");

  // download() for a live body (server-sent events, follow): returns when the server ends the
  // response or `on_data` returns false.
  Status stream(const std::string& target, const std::function<bool(std::string_view)>& on_data);

  // GET `target` and hand a 200 answer's body to `on_data` as it arrives (never held whole);
  // another status is an Error with the server's message. Returns the body's length.
  Result<uint64_t> download(const std::string& target,
                            const std::function<bool(std::string_view)>& on_data);

 private:
  std::string base_, host_, port_, token_;
};

// --server, else BOXCAR_SERVER, else http://127.0.0.1:8080.
std::string server_url(const std::optional<std::string>& flag);

// The "error" field of a JSON error body, or the body itself.
std::string error_text(const ApiReply& reply);

}  // namespace boxcar::cli
