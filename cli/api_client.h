// ApiClient: the CLI's synchronous calls of the server's REST API (submit, jobs, logs, cancel,
// artifacts) on the one HttpClient (http/http_client.h): one request at a time, over https (the
// server's certificate checked against --ca-file or the system's CAs, and its name) or plain
// http; the server URL from --server or BOXCAR_SERVER. Errors carry their ErrorCode: usage for
// a bad URL or token transport, unavailable for a server that cannot be reached.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/tls_client.h"
#include "base/url.h"
#include "cli/flags.h"

namespace boxcar::cli {

struct ApiReply {
  int status = 0;
  std::string body;
};

struct ClientOptions {
  std::string ca_file;  // PEM CAs to trust for https; empty: the system's store
  std::string token;    // sent as "Authorization: Bearer"; empty: none
};

// A client command's --ca-file, else BOXCAR_CA_FILE.
ClientOptions client_options(const ParsedFlags& flags);

class ApiClient {
 public:
  // `base` like "https://ci.example:8443" or "http://127.0.0.1:8080" (no path). Errors are
  // usage errors naming what is wrong: the URL, the CA file, or a token that would travel in
  // clear to another machine (refused before anything is sent).
  static Result<ApiClient> create(const std::string& base, const ClientOptions& options = {});

  const std::string& base() const { return url_.text; }

  // A request with an optional body (JSON unless `content_type` says otherwise). Connection
  // failures are Errors that name the server.
  Result<ApiReply> request(const std::string& method, const std::string& target,
                           const std::string& json_body = "",
                           const std::string& content_type = "application/json");

  // download() for a live body (server-sent events, follow): returns when the server ends the
  // response or `on_data` returns false.
  Status stream(const std::string& target, const std::function<bool(std::string_view)>& on_data);

  // GET `target` and hand a 200 answer's body to `on_data` as it arrives (never held whole);
  // another status is an Error with the server's message. Returns the body's length.
  Result<uint64_t> download(const std::string& target,
                            const std::function<bool(std::string_view)>& on_data);

 private:
  ServerUrl url_;
  std::string token_;
  std::shared_ptr<TlsClient> tls_;  // set for https
};

// The --help lines every client command prints about reaching the server.
inline constexpr const char* kConnectionHelp =
    "  --server also from BOXCAR_SERVER (default http://127.0.0.1:8080); https:// servers are\n"
    "  checked against --ca-file PEM (or BOXCAR_CA_FILE; default the system's CAs)\n";

// --server, else BOXCAR_SERVER, else http://127.0.0.1:8080.
std::string server_url(const std::optional<std::string>& flag);

// The "error" field of a JSON error body, or the body itself.
std::string error_text(const ApiReply& reply);

}  // namespace boxcar::cli
