// HttpClient: the agent's asynchronous HTTP/1.1 client (Boost.Beast) for the agent protocol:
// JSON POSTs with a Bearer token (the registration token, then the agent's credential) and,
// for a job's reports, its lease token; kept-alive connections to one server, a deadline per
// request, over https (verified as TlsClient says) or http. Answers are {status, body};
// deciding what a failure means is remote_errors.h's business.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>

#include "base/duration.h"
#include "base/result.h"
#include "base/tls_client.h"
#include "base/unique_fd.h"
#include "base/url.h"

namespace boxcar::agent {

struct HttpResponse {
  unsigned status = 0;
  std::string body;
  // Also set with `ec` when the answer's header came but its body did not: cut short, or
  // larger than protocol::kMaxClaimBytes (ec = http::error::body_limit).
  std::vector<std::pair<std::string, std::string>> headers;
  // Set (with `ec`) when the request's own body could not be read here: a local fault that
  // sending again cannot fix, unlike the network errors `ec` otherwise carries.
  std::string local_error;

  // A header's value ("" when absent); the name is matched case-insensitively.
  std::string header(std::string_view name) const;
};

// An open file shared by whoever queued an upload of it and the requests that send it.
using SharedFd = std::shared_ptr<const unique_fd>;

// `ec` is set when no HTTP answer came (refused, reset, timed out, cancelled).
using HttpHandler = std::function<void(const boost::system::error_code& ec, HttpResponse response)>;

using BaseUrl = ServerUrl;

// Parses "http[s]://host[:port][/prefix]" (parse_server_url); an error names what is wrong.
Result<BaseUrl> parse_base_url(const std::string& url);

class HttpClient {
 public:
  // Handlers run on `io`, which must outlive the client. An https base is checked as `tls`
  // says (null: the system's CAs). The caller checks the base with check_token_transport.
  HttpClient(boost::asio::io_context& io, BaseUrl base, std::string token,
             std::shared_ptr<TlsClient> tls = nullptr);
  // Aborts every request in flight; their handlers are not called.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs `body` to prefix + `path`. `done` is called once, on the io_context, unless the
  // request is cancelled or the client destroyed first. A request on a kept-alive connection
  // that the server had closed is re-sent once on a fresh one. Returns an id for cancel().
  // A non-empty `lease` is sent as the X-Boxcar-Lease header (a job's reports).
  uint64_t post_json(const std::string& path, const boost::json::value& body, Millis timeout,
                     HttpHandler done, const std::string& lease = "");

  // POSTs bytes [0, `size`) of the open regular file `file` as the raw body
  // (application/octet-stream), read with pread() in chunks, so every send (a re-send too)
  // starts at the first byte and nothing is reopened by name. A read error, or the file ending
  // before `size`, ends the request with `local_error` set. `path` may carry a query.
  uint64_t post_file(const std::string& path, SharedFd file, uint64_t size, Millis timeout,
                     HttpHandler done, const std::string& lease = "");

  // The bearer token of requests posted from now on (the credential, once registered).
  void set_token(std::string token);

  // Aborts one request (closing its connection); its handler is not called.
  void cancel(uint64_t id);

  size_t in_flight() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace boxcar::agent
