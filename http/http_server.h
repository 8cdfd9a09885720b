// HttpServer: a small HTTP/1.1 server on Boost.Beast. Async accept on an io_context, keep-alive,
// per-route body limits, and a router of (method, path pattern with {name} captures) -> handler.
// A handler answers through a Responder, at once or later (long polls, server-sent events).
// With a TLS context every connection speaks HTTPS (Beast's ssl_stream over asio::ssl).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/value.hpp>

#include "base/connection_limits.h"
#include "base/listener.h"
#include "base/result.h"

namespace boost::asio::ssl {
class context;
}

namespace boxcar::server {

namespace http = boost::beast::http;

class TakenConnection;

struct HttpRequest {
  http::request<http::string_body> raw;
  std::string path;                            // percent-decoded
  std::map<std::string, std::string> query;    // percent-decoded; the last value of a key wins
  std::map<std::string, std::string> params;   // the route pattern's {name} captures
  std::string client_address;                  // the peer's IP address ("127.0.0.1")
  // A route with RouteOptions::spool_dir: the body went to this file, not to raw.body(). The
  // handler owns the file (renames or removes it); its size and SHA-256 (hex) come with it.
  std::filesystem::path body_file;
  uint64_t body_bytes = 0;
  std::string body_sha256;
  // A route with RouteOptions::take_connection: the connection, its body still unread.
  std::shared_ptr<TakenConnection> connection;

  http::verb method() const { return raw.method(); }
  const std::string& body() const { return raw.body(); }
  std::string header(std::string_view name) const;  // "" when absent
  std::string query_or(const std::string& key, const std::string& fallback) const;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse json(unsigned status, const boost::json::value& body);
  // {"error": message}: say what went wrong and how to fix it.
  static HttpResponse error(unsigned status, std::string_view message);
  // {"error": message, "code": code, "field": field (only when not empty)}: the sandbox API's
  // error answers, whose codes clients switch on (docs/sandboxes.md lists them).
  static HttpResponse error_code(unsigned status, std::string_view code, std::string_view message,
                                 std::string_view field = {});
  static HttpResponse text(unsigned status, std::string body,
                           std::string content_type = "text/plain; charset=utf-8");
};

// One request's answer. Thread-safe; every method may be called from any thread, and the
// callbacks run on executor(). Answer exactly once: reply(), or begin_stream() ... end().
class Responder {
 public:
  virtual ~Responder() = default;
  virtual void reply(HttpResponse response) = 0;
  // A streamed answer (chunked transfer encoding): `head` gives status and headers, its body
  // is ignored. Each write's `done(ok)` runs once the data is sent; ok=false: the peer is gone.
  virtual void begin_stream(HttpResponse head) = 0;
  virtual void write(std::string data, std::function<void(bool ok)> done) = 0;
  virtual void end() = 0;
  // Answers with `head` (status, headers; its body is ignored) and `length` bytes of `file`
  // from `offset`, read from disk as the socket takes them (never whole in memory).
  virtual void reply_file(HttpResponse head, std::filesystem::path file, uint64_t offset,
                          uint64_t length) = 0;
  // The same from a file already open (the responder owns `fd` from now on): one a sandbox's
  // file helper passed, which has no path the agent may open.
  virtual void reply_fd(HttpResponse head, int fd, uint64_t offset, uint64_t length) = 0;
  // The connection's strand: run timers of a held request here.
  virtual boost::asio::any_io_executor executor() = 0;
  // Runs once if the peer disconnects (or the server stops) before the answer is complete.
  virtual void on_close(std::function<void()> callback) = 0;
  virtual bool closed() const = 0;
};

using Handler = std::function<void(HttpRequest& request, std::shared_ptr<Responder> responder)>;

// The connection of a route with RouteOptions::take_connection, handed over right after the
// request header (a reverse proxy relays the body and the answer without holding either whole).
// The handler either answers through its Responder as usual, or writes a whole raw HTTP answer
// here and calls finish(). Either way the connection closes after this exchange: bytes that
// follow the body are never read as another request. Thread-safe; callbacks run on executor().
class TakenConnection {
 public:
  virtual ~TakenConnection() = default;
  // Reads the next piece of the request body (de-chunked) into [data, data + size):
  // done(ok, n, last). ok=false: the client went away, stalled past the idle timeout, or sent
  // a malformed body. A request without a body reports last at once.
  virtual void read_body(char* data, size_t size,
                         std::function<void(bool ok, size_t n, bool last)> done) = 0;
  // Whether the request has a body (Content-Length > 0, or chunked).
  virtual bool has_body() const = 0;
  // Writes raw bytes to the client; done(ok) once they are sent.
  virtual void write_raw(std::string data, std::function<void(bool ok)> done) = 0;
  // The raw answer is complete: closes the connection (draining an unread body a little first).
  virtual void finish() = 0;
  virtual boost::asio::any_io_executor executor() = 0;
};

struct RouteOptions {
  size_t body_limit = 0;                  // 0: the server's default
  std::function<void()> on_too_large;     // e.g. to count a rejected webhook
  // Runs once the headers are in, before any of the body is read (request.body() is empty):
  // a response refuses the request (auth, a lease, a size limit) without taking its body.
  std::function<std::optional<HttpResponse>(const HttpRequest& head)> admit;
  // Non-empty: the body streams into a fresh file in this directory, hashed on the way
  // (HttpRequest::body_file), instead of into memory.
  std::filesystem::path spool_dir;
  // The handler gets the connection right after the header (HttpRequest::connection), its
  // body unread and not limited by body_limit, and no close watch runs (it reads the socket).
  bool take_connection = false;
};

class Router {
 public:
  struct Route {
    http::verb method;
    std::vector<std::string> segments;  // "{id}" captures one segment, a final "{rest...}" the rest
    Handler handler;
    RouteOptions options;
  };
  struct Match {
    const Route* route = nullptr;       // null: status says why (404 or 405)
    std::map<std::string, std::string> params;
    unsigned status = 200;
    std::string allow;                  // for 405
  };

  // `pattern` like "/api/v1/jobs/{id}/cancel"; a last segment "{name...}" captures every
  // remaining segment (slashes included, at least one).
  void add(http::verb method, std::string_view pattern, Handler handler,
           RouteOptions options = {});
  Match match(http::verb method, std::string_view path) const;
  // A check that runs before every route's own admit (RouteOptions::admit), for routes added
  // after this call: the Host allow-list. A response refuses the request.
  void guard(std::function<std::optional<HttpResponse>(const HttpRequest& head)> check);

 private:
  std::vector<Route> routes_;
  std::function<std::optional<HttpResponse>(const HttpRequest& head)> guard_;
};

struct HttpServerOptions {
  size_t body_limit = 8 << 20;
  size_t header_limit = 16 << 10;
  // A request's whole header must arrive within header_timeout of the connection (or of the
  // request's first byte on a kept-alive one): a client that trickles it in (slowloris) is
  // dropped. A kept-alive connection may wait idle_timeout for its next request; a body must
  // keep arriving (idle_timeout for a body in memory, and per 256 KiB when spooled to a file).
  // Answers in progress (streams, long polls, files) are never cut by either.
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::seconds write_timeout{30};
  // Per listener: connections over a cap are refused at once (plain HTTP: with a 503).
  ConnectionLimits limits;
  // Set: HTTPS only. A client that speaks plain HTTP gets a 400 saying so; one that starts a
  // handshake must finish it within handshake_timeout (a half-open client holds nothing long).
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::chrono::seconds handshake_timeout{10};
  std::function<void(unsigned status)> on_response;  // called for every answer (metrics)
};

class HttpSession;

class HttpServer {
 public:
  // The router must outlive the server.
  HttpServer(boost::asio::io_context& io, const Router& router, HttpServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting; returns the bound port (port 0 picks a free one). May be called
  // again for another address or port: each listener counts its connections on its own, by
  // `limits` when given, else options().limits.
  Result<uint16_t> listen(const std::string& address, uint16_t port,
                          std::optional<ConnectionLimits> limits = std::nullopt);
  // Stops accepting and closes every connection (held long polls and streams included).
  void stop();

  // Connections open now on every listener.
  size_t open_connections() const;

  // For sessions.
  const Router& router() const { return router_; }
  const HttpServerOptions& options() const { return options_; }
  void forget(HttpSession* session);

 private:
  boost::asio::io_context& io_;
  const Router& router_;
  HttpServerOptions options_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  mutable std::mutex mu_;
  std::map<HttpSession*, std::weak_ptr<HttpSession>> sessions_;
  bool stopped_ = false;
};

}  // namespace boxcar::server
