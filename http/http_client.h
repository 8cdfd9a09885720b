// HttpClient: boxcar's one HTTP/1.1 client (Boost.Beast), used by the agent for its protocol
// and by the CLI for the API: requests to one server over kept-alive connections, a deadline per
// request, over https (verified as TlsClient says) or http, with a Bearer token when one is set.
// Answers are {status, headers, body}, or for stream() the body as it arrives. It knows nothing
// of jobs: what a failure means is the caller's business (agent/daemon/remote_errors.h, the CLI).
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
#include "base/url.h"
#include "base/tls_client.h"
#include "base/unique_fd.h"

namespace boxcar {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// How far a failed request got: where the error `ec` carries came from.
enum class HttpStage { resolve, connect, tls_handshake, exchange };

struct HttpReply {
  unsigned status = 0;
  std::string body;
  // Also set with `ec` when the answer's header came but its body did not: cut short, or
  // larger than HttpClientOptions::max_body (ec = http::error::body_limit).
  HttpHeaders headers;
  // Set (with `ec`) when the request's own body could not be read here: a local fault that
  // sending again cannot fix, unlike the network errors `ec` otherwise carries.
  std::string local_error;
  HttpStage stage = HttpStage::exchange;  // with `ec`: where it failed

  // A header's value ("" when absent); the name is matched case-insensitively.
  std::string header(std::string_view name) const;
};

// Why a request that wanted a 200 did not get one, for a log line: the error `ec`, or the
// status with the first 300 bytes of the answer.
std::string reply_failure(const boost::system::error_code& ec, const HttpReply& reply);

// An open file shared by whoever queued an upload of it and the requests that send it.
using SharedFd = std::shared_ptr<const unique_fd>;

// `ec` is set when no (whole) HTTP answer came (refused, reset, timed out, cut short).
using ReplyHandler = std::function<void(const boost::system::error_code& ec, HttpReply reply)>;

// stream()'s consumer of a 200 answer's body, piece by piece; false stops the request.
using BodyHandler = std::function<bool(std::string_view piece)>;

// No deadline: for a CLI waiting on the user's behalf, or a live log it follows.
inline constexpr Millis kNoTimeout{0};

struct HttpClientOptions {
  std::string user_agent = "boxcar";
  // Larger answers end with http::error::body_limit (the agent's claims are small; the CLI's
  // listings are not). stream() has no such cap: its body is never held.
  uint64_t max_body = 1 << 20;
};

class HttpClient {
 public:
  // Handlers run on `io`, which must outlive the client. An https base is checked as `tls`
  // says (null: the system's CAs). The caller checks the base with check_token_transport.
  // An empty `token` sends no Authorization header.
  HttpClient(boost::asio::io_context& io, ServerUrl base, std::string token,
             std::shared_ptr<TlsClient> tls = nullptr, HttpClientOptions options = {});
  // Aborts every request in flight; their handlers are not called.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `method` to prefix + `path` (which may carry a query) with `body` (of `content_type`
  // when not empty) and `headers`. `done` is called once, on the io_context, unless the request
  // is cancelled or the client destroyed first. A request on a kept-alive connection that the
  // server had closed is re-sent once on a fresh one. Returns an id for cancel().
  uint64_t send(const std::string& method, const std::string& path, std::string body,
                const std::string& content_type, Millis timeout, ReplyHandler done,
                const HttpHeaders& headers = {});

  // POSTs `body` as JSON.
  uint64_t post_json(const std::string& path, const boost::json::value& body, Millis timeout,
                     ReplyHandler done, const HttpHeaders& headers = {});

  // POSTs bytes [0, `size`) of the open regular file `file` as the raw body
  // (application/octet-stream), read with pread() in chunks, so every send (a re-send too)
  // starts at the first byte and nothing is reopened by name. A read error, or the file ending
  // before `size`, ends the request with `local_error` set.
  uint64_t post_file(const std::string& path, SharedFd file, uint64_t size, Millis timeout,
                     ReplyHandler done, const HttpHeaders& headers = {});

  // post_file() with another method (a sandbox file's PUT), telling `progress` (when set) the
  // bytes handed to the connection so far as they go: an upload's progress bar.
  uint64_t send_file(const std::string& method, const std::string& path, SharedFd file,
                     uint64_t size, Millis timeout, ReplyHandler done, const HttpHeaders& headers = {},
                     std::function<void(uint64_t sent)> progress = {});

  // GETs `path` and hands a 200 answer's body to `on_data` as it arrives (a live log is passed
  // on as it comes; nothing is held whole); `done` then gets the status and headers, and for any
  // other status the start of the body (64 KiB at most). The server closing the connection ends
  // the body. `idle` bounds each wait for more (kNoTimeout: none). `headers` are sent along (a
  // registry's Accept or per-request Authorization).
  uint64_t stream(const std::string& path, Millis idle, BodyHandler on_data, ReplyHandler done,
                  const HttpHeaders& headers = {});

  // stream() of a request with a body: a POST whose answer is a live stream (a sandbox's
  // exec with "stream": true answers server-sent events).
  uint64_t stream(const std::string& method, const std::string& path, std::string body,
                  const std::string& content_type, Millis idle, BodyHandler on_data,
                  ReplyHandler done, const HttpHeaders& headers = {});

  // The bearer token of requests sent from now on (the agent's credential, once registered).
  void set_token(std::string token);

  // Aborts one request (closing its connection); its handler is not called.
  void cancel(uint64_t id);

  size_t in_flight() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace boxcar
