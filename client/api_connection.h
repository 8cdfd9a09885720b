// ApiConnection: synchronous requests to a boxcar server's API for the client library, on the
// one HttpClient (http/http_client.h): one request at a time, each on its own io_context run.
// An answer that is not 2xx becomes an Error with the server's own message (api_error).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "base/result.h"
#include "base/tls_client.h"
#include "base/url.h"
#include "base/unique_fd.h"
#include "http/http_client.h"

namespace boxcar::client {

// An error answer's parts: {"error", "code", "field"?} (docs/sandboxes.md, "Errors").
struct ApiFailure {
  int status = 0;
  std::string message;  // the server's "error" text, escaped for a terminal, at most 1 KiB
  std::string code;     // "sandbox_not_found", ...; "" when the answer had none
  std::string field;    // the request field it is about, when the server named one
};

// Reads an error answer (any body: JSON or not, hostile or not).
ApiFailure parse_failure(int status, std::string_view body);

// The Error a client call returns for it: the server's message; the ErrorCode from the status
// (404 not_found, 409 conflict, 413/429/507 limit_exceeded, 5xx unavailable, other 4xx
// invalid_input, 401 usage); `subject` keeps the answer's code.
Error api_error(const ApiFailure& failure);

struct ConnectOptions {
  std::string ca_file;  // PEM CAs for an https server; empty: the system's
};

class ApiConnection {
 public:
  // `server` like "http://127.0.0.1:8080" (no path). Errors (usage): a bad URL, a token that
  // would cross the network in clear, an unreadable CA file.
  static Result<std::shared_ptr<ApiConnection>> open(const std::string& server, std::string token,
                                                     const ConnectOptions& options = {});

  const std::string& server() const { return url_.text; }

  // A request whose answer is held whole (JSON, at most 256 MiB). A 2xx answer's body is returned;
  // any other status is api_error(); no answer is an unavailable Error naming the server.
  Result<std::string> call(const std::string& method, const std::string& target,
                           std::string body = {}, const std::string& content_type = "application/json",
                           const HttpHeaders& headers = {});
  // call() with a JSON body, the answer parsed (an empty answer is null).
  Result<boost::json::value> call_json(const std::string& method, const std::string& target,
                                       const boost::json::value& body = nullptr,
                                       const HttpHeaders& headers = {});

  // A request whose 200 answer is handed to `on_data` as it arrives (false stops); for SSE and
  // file downloads. No deadline: the caller's callback decides when to stop.
  Status stream(const std::string& method, const std::string& target, std::string body,
                const std::function<bool(std::string_view)>& on_data);

  // Sends bytes [0, size) of `file` as the body of `method` (PUT of a file), `progress` told the
  // bytes sent; returns the answer's body.
  Result<std::string> upload(const std::string& method, const std::string& target, SharedFd file,
                             uint64_t size, const std::function<void(uint64_t)>& progress);

 private:
  Result<std::string> finish(const std::string& target, const boost::system::error_code& ec,
                             HttpReply& reply);

  ServerUrl url_;
  std::string token_;
  std::shared_ptr<TlsClient> tls_;
};

}  // namespace boxcar::client
