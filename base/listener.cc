#include "base/listener.h"

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>

namespace boxcar {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr std::chrono::milliseconds kFirstPause{100};
constexpr std::chrono::milliseconds kLongestPause{1000};
constexpr std::chrono::seconds kLogEvery{60};

// Failures that belong to one connection (it was aborted before we took it): the next one is
// accepted at once. Anything else (out of descriptors or memory above all) would fail again
// straight away, so it pauses accepting instead of spinning on it.
bool concerns_one_connection(const error_code& ec) {
  return ec == net::error::connection_aborted || ec == net::error::connection_reset ||
         ec == net::error::would_block || ec == net::error::try_again ||
         ec == net::error::interrupted || ec.value() == EPROTO || ec.value() == EPERM;
}

bool out_of_descriptors(const error_code& ec) {
  return ec == net::error::no_descriptors || ec.value() == ENFILE ||
         ec == net::error::no_buffer_space || ec == net::error::no_memory;
}

}  // namespace

struct Listener::Impl : std::enable_shared_from_this<Impl> {
  Impl(net::io_context& io_, Options o, OnConnection f)
      : io(io_),
        strand(net::make_strand(io_)),
        acceptor(strand),
        timer(strand),
        options(std::move(o)),
        counter(options.limits),
        on_connection(std::move(f)) {}

  void accept() {
    acceptor.async_accept(net::make_strand(io),
                          [self = shared_from_this()](error_code ec, tcp::socket socket) {
                            self->on_accept(ec, std::move(socket));
                          });
  }

  void on_accept(const error_code& ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) return on_error(ec);
    pause = kFirstPause;
    error_code peer_ec;
    auto peer = socket.remote_endpoint(peer_ec);
    if (peer_ec) return accept();  // gone already
    auto slot = counter.admit(peer.address());
    if (!slot.ok()) {
      refuse(socket, slot.error().message);
      return accept();
    }
    {
      std::lock_guard lock(mu);
      if (closed) return;
      on_connection(std::move(socket), std::move(*slot));
    }
    accept();
  }

  void on_error(const error_code& ec) {
    if (concerns_one_connection(ec)) return accept();
    ++pauses;
    auto now = Clock::now();
    if (logged_at == Clock::time_point{} || now - logged_at >= kLogEvery) {
      std::string what = out_of_descriptors(ec)
                             ? "out of file descriptors (" + ec.message() + "; RLIMIT_NOFILE " +
                                   std::to_string(open_file_limit()) + ", " +
                                   std::to_string(counter.open()) + " connections open here)"
                             : "accept failed: " + ec.message();
      log(what + ": pausing accepts for " + std::to_string(pause.count()) +
          " ms, doubling up to 1 s, while open connections are served; lower the connection "
          "caps or raise the limit (" +
          std::to_string(pauses) + " pause(s) so far; said at most once a minute)");
      logged_at = now;
    }
    timer.expires_after(pause);
    pause = std::min(pause * 2, kLongestPause);
    timer.async_wait([self = shared_from_this()](error_code e) {
      if (!e) self->accept();
    });
  }

  // Over a cap: answer (plain HTTP) without waiting on the client, and close.
  void refuse(tcp::socket& socket, const std::string& why) {
    error_code ec;
    if (options.http_refusal) {
      socket.non_blocking(true, ec);
      std::string body = "{\"error\":\"" + why + ": retry later, or close idle connections\"}\n";
      std::string answer =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Content-Length: " +
          std::to_string(body.size()) + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body;
      socket.send(net::buffer(answer), 0, ec);
      // What the client sent already is read first, so the close is a FIN: a reset could make
      // its kernel drop the answer before the client reads it.
      std::array<char, 4096> scratch;
      socket.receive(net::buffer(scratch), 0, ec);
      socket.shutdown(tcp::socket::shutdown_both, ec);
    }
    socket.close(ec);
  }

  void log(const std::string& line) {
    if (options.log) return options.log(line);
    std::string where = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                                : bound.address().to_string();
    std::fprintf(stderr, "boxcar: %s %s:%u: %s\n", options.name.c_str(), where.c_str(),
                 bound.port(), line.c_str());
  }

  void close_now() {
    error_code ec;
    acceptor.close(ec);
    timer.cancel();
  }

  net::io_context& io;
  net::strand<net::io_context::executor_type> strand;
  tcp::acceptor acceptor;   // used on `strand` only
  net::steady_timer timer;  // the pause after a failed accept
  Options options;
  ConnectionCounter counter;
  OnConnection on_connection;
  tcp::endpoint bound;
  std::chrono::milliseconds pause = kFirstPause;
  uint64_t pauses = 0;
  Clock::time_point logged_at{};
  // Held while on_connection runs, so that once close() returned it never runs again.
  std::recursive_mutex mu;
  bool closed = false;
};

Listener::Listener(net::io_context& io, Options options, OnConnection on_connection)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(on_connection))) {}

Listener::~Listener() { close(); }

Result<tcp::endpoint> Listener::listen(const tcp::endpoint& endpoint) {
  auto& a = impl_->acceptor;
  error_code ec;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (!ec) impl_->bound = a.local_endpoint(ec);
  if (ec) {
    error_code ignored;
    a.close(ignored);
    return Error{ec.message(), ec.value()};
  }
  net::post(impl_->strand, [impl = impl_] { impl->accept(); });
  return impl_->bound;
}

void Listener::close() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->closed) return;
    impl_->closed = true;
  }
  // The acceptor belongs to its strand: closed there, unless nothing runs the io_context.
  if (impl_->strand.running_in_this_thread() || impl_->io.stopped()) return impl_->close_now();
  auto closed = std::make_shared<std::promise<void>>();
  auto future = closed->get_future();
  net::post(impl_->strand, [impl = impl_, closed] {
    impl->close_now();
    closed->set_value();
  });
  // From outside the io_context, wait (briefly) so the port is free when close() returns; a
  // thread of the io_context must not wait on it.
  if (!impl_->io.get_executor().running_in_this_thread()) future.wait_for(std::chrono::seconds(1));
}

tcp::endpoint Listener::local_endpoint() const { return impl_->bound; }

size_t Listener::open_connections() const { return impl_->counter.open(); }

}  // namespace boxcar
