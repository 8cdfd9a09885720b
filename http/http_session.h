// HttpSession: one HTTP/1.1 connection of an HttpServer (internal to http_server*.cc). It reads
// one request at a time; while a handler holds its request (long poll, stream) it watches the
// socket, so a client that goes away is noticed and the handler's on_close callbacks run.
// Over TLS the same, on an ssl_stream after a bounded handshake.
#pragma once

#include <unistd.h>

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "base/sha256.h"
#include "http/http_server.h"

namespace boxcar::server {

// Splits a request target into its decoded path and query (http_router.cc); false if it is not
// a valid origin-form target.
bool parse_target(std::string_view target, std::string& path,
                  std::map<std::string, std::string>& query);

// A request body streaming into a file (RouteOptions::spool_dir); the file is removed unless
// handed to the handler.
struct BodySpool {
  std::filesystem::path file;
  int fd = -1;
  Sha256 hash;
  uint64_t bytes = 0;
  std::vector<char> buffer = std::vector<char>(1 << 18);
  bool handed_over = false;
  ~BodySpool();
};

// A file answer being written: `left` bytes from `offset`, one buffer at a time.
struct FileReply {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t left = 0;
  std::vector<char> buffer = std::vector<char>(1 << 18);
  ~FileReply() {
    if (fd >= 0) ::close(fd);
  }
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // `tls` null: plain HTTP. `slot` is the connection's place in its listener's counts, given
  // back when the connection closes.
  HttpSession(boost::asio::ip::tcp::socket socket, ConnectionSlot slot, HttpServer& server,
              boost::asio::ssl::context* tls);

  void start();
  void close() {
    boost::asio::post(executor(), [self = shared_from_this()] { self->shutdown(); });
  }

  // Called on the strand by the request's Exchange.
  void send(HttpResponse response, uint64_t exchange);
  void send_stream_head(HttpResponse head, uint64_t exchange);
  void send_chunk(std::string data, std::function<void(bool)> done, bool last, uint64_t exchange);
  void send_file(HttpResponse head, std::filesystem::path file, uint64_t offset, uint64_t length,
                 uint64_t exchange);
  // send_file of an open file; closes `fd` in every case.
  void send_fd(HttpResponse head, int fd, uint64_t offset, uint64_t length, uint64_t exchange);
  void add_close_callback(std::function<void()> callback, uint64_t exchange);
  bool is_closed() const { return closed_; }
  // RouteOptions::take_connection: on the strand, for the exchange's TakenConnection.
  void taken_read_body(char* data, size_t size, std::function<void(bool, size_t, bool)> done,
                       uint64_t exchange);
  void taken_write(std::shared_ptr<std::string> data, std::function<void(bool)> done,
                   uint64_t exchange);
  void taken_finish(uint64_t exchange);
  boost::asio::any_io_executor executor() { return tcp().get_executor(); }

 private:
  struct Pending {
    std::string data;
    std::function<void(bool)> done;
    bool last = false;
  };

  using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  // The TCP layer (timeouts, the socket) and the HTTP layer (plain or TLS) of the connection.
  boost::beast::tcp_stream& tcp() { return tls_ ? boost::beast::get_lowest_layer(*tls_) : *plain_; }
  template <typename F>
  void with_stream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }

  void on_detected(boost::beast::error_code ec, bool is_tls);
  void refuse_plain_http();
  void prepare_parser();
  void read_header();
  void await_request();
  void issue_read_header();
  void watch_tls_peer();
  void close_gracefully();
  void on_header(boost::beast::error_code ec);
  void read_body(std::string path, std::map<std::string, std::string> query);
  void dispatch(const Router::Route& route, std::map<std::string, std::string> params,
                std::string path, std::map<std::string, std::string> query);
  void take(std::string path, std::map<std::string, std::string> query);
  void reject(unsigned status, std::string_view message);
  void refuse(HttpResponse response);
  void start_spool(std::string path, std::map<std::string, std::string> query, size_t limit);
  void read_spool_chunk(std::string path, std::map<std::string, std::string> query);
  void write_file_next();
  void finish_exchange(bool reusable);
  void watch_peer();
  void write_next();
  void shutdown();
  void fire_close();
  void linger_close();
  void drain(std::shared_ptr<std::array<char, 16384>> scratch, size_t total);
  void drain_outbox();

  std::optional<boost::beast::tcp_stream> plain_;
  std::optional<TlsStream> tls_;
  HttpServer& server_;
  ConnectionSlot slot_;
  // TLS: the close watch is a read (tls_watching_); read_header waits for it (resume_read_),
  // with idle_timer_ as its timeout, since a pending read's timeout cannot be changed.
  boost::asio::steady_timer idle_timer_;
  bool tls_watching_ = false;
  bool resume_read_ = false;
  boost::beast::flat_buffer buffer_;
  static constexpr size_t kBodyRead = 64 << 10;  // what a body read asks of the socket at most
  void reserve_body_reads();
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::request_parser<http::buffer_body>> spool_parser_;
  std::unique_ptr<BodySpool> spool_;
  std::shared_ptr<http::response<http::empty_body>> file_head_;
  std::unique_ptr<FileReply> file_out_;
  Router::Match match_;
  bool keep_alive_ = false;
  bool linger_ = false;        // the request's body is still unread: drain before closing
  bool closed_ = false;
  uint64_t exchange_ = 0;      // id of the request being answered; 0 = none
  bool answered_ = false;
  bool continued_ = false;     // a taken request's "100 Continue" went out
  uint64_t watched_ = 0;       // the exchange the pending close watch belongs to
  std::vector<std::function<void()>> on_close_;
  std::shared_ptr<http::response<http::string_body>> response_;
  std::shared_ptr<http::response<http::empty_body>> stream_head_;
  std::optional<http::response_serializer<http::empty_body>> head_serializer_;
  std::deque<Pending> outbox_;
  bool writing_ = false;
  std::string client_address_;  // the peer's IP address, for per-client limits
};

}  // namespace boxcar::server
