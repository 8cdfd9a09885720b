#include "previews/preview_proxy.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include <array>
#include <vector>

#include "agent/sandbox_connect.h"
#include "base/listener.h"
#include "base/random_token.h"

namespace boxcar::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr const char* kNotFound =
    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n"
    "Connection: close\r\n\r\nno such preview.\r\n";
constexpr const char* kBadGateway =
    "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 33\r\n"
    "Connection: close\r\n\r\nthe preview's server is not up.\r\n";

// A busy server gets the kernel's SYN retries at 1 s and 3 s after the first; a connection not up
// after those answers 502.
constexpr std::chrono::seconds kUpstreamTimeout{5};

struct Entry {
  // Cleared by withdraw() and close(): a session that looked the entry up before must not call
  // into the sandbox, which may be gone by then.
  std::shared_ptr<bool> live = std::make_shared<bool>(true);
  std::string token;
  std::string job;  // preview_job_label() of the job
  executors::Sandbox* sandbox = nullptr;
  uint16_t port = 0;
  Clock::time_point until = Clock::time_point::max();
};

bool iequals_tail(std::string_view s, std::string_view tail) {
  if (s.size() < tail.size()) return false;
  s = s.substr(s.size() - tail.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(tail[i]))) {
      return false;
    }
  }
  return true;
}

// Both directions of one proxied connection: bytes are copied until either side is done, or
// until neither has moved a byte for `idle_timeout`.
struct Splice {
  Splice(tcp::socket c, tcp::socket u, ConnectionSlot s, Clock::duration idle)
      : client(std::move(c)), upstream(std::move(u)), slot(std::move(s)), idle_timeout(idle),
        idle_timer(client.get_executor()) {}
  void close() {
    boost::system::error_code ignored;
    client.close(ignored);
    upstream.close(ignored);
  }
  tcp::socket client;
  tcp::socket upstream;
  ConnectionSlot slot;  // the client's place in the proxy's counts, until both sockets close
  Clock::duration idle_timeout;
  Clock::time_point last_activity = Clock::now();
  asio::steady_timer idle_timer;
  int pumps = 2;        // directions still running
};

// `keep` holds both sockets open while either direction runs.
asio::awaitable<void> pump(std::shared_ptr<Splice> keep, tcp::socket& from, tcp::socket& to) {
  std::array<char, 16384> buf;
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), kNoThrow);
    if (n > 0) {
      keep->last_activity = Clock::now();
      auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf.data(), n), kNoThrow);
      if (wec) ec = wec;
      keep->last_activity = Clock::now();
    }
    if (ec) {
      boost::system::error_code ignored;
      if (ec == asio::error::eof) {
        // A half-close passes through: the other direction may still be answering.
        to.shutdown(tcp::socket::shutdown_send, ignored);
      } else {
        keep->close();
      }
      if (--keep->pumps == 0) keep->idle_timer.cancel();  // frees the splice now
      co_return;
    }
  }
}

// Closes the splice once no byte has moved either way for its idle timeout: bytes flowing (a
// download, a chatty WebSocket) keep it open however long it lasts.
asio::awaitable<void> watch_idle(std::shared_ptr<Splice> splice) {
  for (;;) {
    splice->idle_timer.expires_at(splice->last_activity + splice->idle_timeout);
    auto [ec] = co_await splice->idle_timer.async_wait(kNoThrow);
    if (ec || splice->pumps == 0) co_return;
    if (Clock::now() - splice->last_activity >= splice->idle_timeout) {
      splice->close();
      co_return;
    }
  }
}

}  // namespace

std::string make_preview_token() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  auto bytes = random_bytes(10);
  if (!bytes) abort_without_randomness(bytes.error());  // publish() has no error to return
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : *bytes) {
    acc = (acc << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(acc >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  return out;
}

std::string preview_job_label(std::string_view run_id) {
  std::string out;
  for (char c : run_id) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9')) out.push_back(l);
    if (out.size() == 40) break;
  }
  if (out.empty()) out = "run";
  return out;
}

struct PreviewProxy::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_, std::string dom) : io(io_), domain(std::move(dom)) {}

  // The live entry with this token, compared in constant time against every entry.
  const Entry* find(std::string_view token) const {
    const Entry* hit = nullptr;
    auto now = Clock::now();
    for (const Entry& e : entries) {
      if (constant_time_equal(e.token, token) && now < e.until) {
        hit = &e;
      }
    }
    return hit;
  }

  // Host form `{port}-{job}-{token}.{domain}[:port]`.
  const Entry* route_host(std::string_view host) const {
    if (host.empty()) return nullptr;
    if (host.front() != '[') {
      if (size_t colon = host.rfind(':'); colon != std::string_view::npos) host = host.substr(0, colon);
    }
    if (!iequals_tail(host, "." + domain)) return nullptr;
    std::string_view label = host.substr(0, host.size() - domain.size() - 1);
    size_t a = label.find('-');
    size_t b = a == std::string_view::npos ? a : label.find('-', a + 1);
    if (b == std::string_view::npos || label.find('-', b + 1) != std::string_view::npos) return nullptr;
    std::string_view port = label.substr(0, a), job = label.substr(a + 1, b - a - 1);
    const Entry* e = find(label.substr(b + 1));
    if (!e || job != e->job || port != std::to_string(e->port)) return nullptr;
    return e;
  }

  asio::awaitable<void> session(tcp::socket client, ConnectionSlot slot) {
    auto self = shared_from_this();
    beast::flat_buffer buf;
    http::request_parser<http::buffer_body> parser;
    parser.header_limit(64 * 1024);
    // A client that never finishes its request header must not hold a connection forever.
    asio::steady_timer header_deadline(io, header_timeout);
    header_deadline.async_wait([&client](const boost::system::error_code& tec) {
      boost::system::error_code ignored;
      if (!tec) client.close(ignored);
    });
    auto [ec, n] = co_await http::async_read_header(client, buf, parser, kNoThrow);
    header_deadline.cancel();
    if (ec) co_return;
    const auto& req = parser.get();
    std::string host(req[http::field::host]);
    std::string target(req.target());
    bool path_form = false;
    const Entry* entry = route_host(host);
    if (!entry && target.starts_with("/preview/")) {
      size_t end = target.find_first_of("/?", 9);
      std::string_view token = std::string_view(target).substr(9, end == std::string::npos ? end : end - 9);
      entry = find(token);
      if (entry && (end == std::string::npos || target[end] == '?')) {
        // Relative links need the trailing slash: `/preview/{token}` -> `/preview/{token}/`.
        std::string location = target.substr(0, end) + "/" + (end == std::string::npos ? "" : target.substr(end));
        std::string moved = "HTTP/1.1 308 Permanent Redirect\r\nLocation: " + location +
                            "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        co_await asio::async_write(client, asio::buffer(moved), kNoThrow);
        co_return;
      }
      if (entry) target = target.substr(end);
      path_form = true;
    }
    if (!entry) {
      co_await asio::async_write(client, asio::buffer(std::string_view(kNotFound)), kNoThrow);
      co_return;
    }
    // A paused sandbox is thawed before the connection; the connection is activity until it ends.
    std::shared_ptr<void> activity;
    if (wake && *entry->live) activity = wake(*entry->sandbox);
    auto conn = co_await connect_upstream(*entry);
    if (!conn.ok()) {
      co_await asio::async_write(client, asio::buffer(std::string_view(kBadGateway)), kNoThrow);
      co_return;
    }
    tcp::socket upstream = std::move(conn).value();

    bool upgrade = req.find(http::field::upgrade) != req.end();
    std::string head;
    head.reserve(512);
    head.append(req.method_string()).append(" ").append(target);
    head.append(req.version() == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    for (const auto& f : req) {
      std::string_view name = f.name_string();
      if (beast::iequals(name, "x-forwarded-for") || beast::iequals(name, "x-forwarded-host") ||
          beast::iequals(name, "x-forwarded-proto")) {
        continue;
      }
      // Later requests on this connection are relayed as they are, so the path form cannot
      // strip their prefix: one request per upstream connection there.
      if (path_form && !upgrade && f.name() == http::field::connection) continue;
      head.append(name).append(": ").append(f.value()).append("\r\n");
    }
    if (path_form && !upgrade) head.append("Connection: close\r\n");
    boost::system::error_code rec;
    auto remote = client.remote_endpoint(rec);
    head.append("X-Forwarded-For: ").append(rec ? "" : remote.address().to_string()).append("\r\n");
    head.append("X-Forwarded-Host: ").append(host).append("\r\n");
    head.append("X-Forwarded-Proto: http\r\n\r\n");
    auto [wec, wn] = co_await asio::async_write(upstream, asio::buffer(head), kNoThrow);
    if (wec) co_return;
    if (buf.size() > 0) {
      auto [bec, bn] = co_await asio::async_write(upstream, buf.data(), kNoThrow);
      if (bec) co_return;
    }
    auto splice = std::make_shared<Splice>(std::move(client), std::move(upstream), std::move(slot),
                                           idle_timeout);
    asio::co_spawn(io, pump(splice, splice->upstream, splice->client), asio::detached);
    asio::co_spawn(io, watch_idle(splice), asio::detached);
    co_await pump(splice, splice->client, splice->upstream);
  }

  // Runs on the io thread like withdraw(), so checking `live` right before connect_tcp is
  // enough for the sandbox never to be used after its withdraw().
  asio::awaitable<Result<tcp::socket>> connect_upstream(const Entry& e) {
    auto initiate = [this, live = e.live, sandbox = e.sandbox, port = e.port](auto handler) {
      // use_awaitable's handler is move-only; SandboxConnectHandler is a std::function.
      auto h = std::make_shared<decltype(handler)>(std::move(handler));
      if (!*live) {
        asio::post(io, [h] { std::move(*h)(Result<tcp::socket>(Error{"the preview was withdrawn"})); });
        return;
      }
      async_connect_sandbox(io, *sandbox, port, kUpstreamTimeout, [h, live](Result<tcp::socket> conn) {
        if (!*live) conn = Error{"the preview was withdrawn"};  // while connecting: relay nothing
        std::move(*h)(std::move(conn));
      });
    };
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result<tcp::socket>)>(
        initiate, asio::use_awaitable);
  }

  asio::io_context& io;
  std::unique_ptr<Listener> listener;
  std::string domain;
  // Two descriptors per proxied connection (client and upstream).
  ConnectionLimits limits = default_connection_limits(open_file_limit(), 2, 1024);
  Clock::duration header_timeout = std::chrono::seconds(10);
  Clock::duration idle_timeout = std::chrono::minutes(5);
  std::vector<Entry> entries;
  std::function<std::shared_ptr<void>(executors::Sandbox&)> wake;
};

void PreviewProxy::set_wake(std::function<std::shared_ptr<void>(executors::Sandbox&)> wake) {
  impl_->wake = std::move(wake);
}

PreviewProxy::PreviewProxy(asio::io_context& io, std::string domain)
    : impl_(std::make_shared<Impl>(io, std::move(domain))) {}

PreviewProxy::~PreviewProxy() { close(); }

Status PreviewProxy::listen(const std::string& listen_addr) {
  size_t colon = listen_addr.rfind(':');
  auto malformed = [&] {
    return Error{"the preview listen address must be ADDR:PORT, not \"" + listen_addr + "\"", 0,
                 ErrorCode::usage, "preview_listen"};
  };
  if (colon == std::string::npos) return malformed();
  std::string host = listen_addr.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  long port = std::strtol(listen_addr.c_str() + colon + 1, &end, 10);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec || *end != 0 || port < 0 || port > 65535 || colon + 1 == listen_addr.size()) {
    return malformed();
  }
  tcp::endpoint ep(addr, static_cast<uint16_t>(port));
  Listener::Options options;
  options.limits = impl_->limits;
  options.http_refusal = true;
  options.name = "preview listener";
  std::weak_ptr<Impl> weak = impl_;
  auto listener = std::make_unique<Listener>(
      impl_->io, std::move(options), [weak](tcp::socket socket, ConnectionSlot slot) {
        auto impl = weak.lock();
        if (!impl) return;
        asio::co_spawn(impl->io, impl->session(std::move(socket), std::move(slot)), asio::detached);
      });
  auto bound = listener->listen(ep);
  if (!bound) {
    return Error{"cannot listen on " + listen_addr + " for previews: " + bound.error().message,
                 bound.error().err, ErrorCode::unavailable};
  }
  impl_->listener = std::move(listener);
  return {};
}

void PreviewProxy::set_header_timeout(std::chrono::steady_clock::duration timeout) {
  impl_->header_timeout = timeout;
}

void PreviewProxy::set_idle_timeout(std::chrono::steady_clock::duration timeout) {
  impl_->idle_timeout = timeout;
}

void PreviewProxy::set_connection_limits(ConnectionLimits limits) { impl_->limits = limits; }

uint16_t PreviewProxy::port() const {
  return impl_->listener ? impl_->listener->local_endpoint().port() : 0;
}

void PreviewProxy::close() {
  if (impl_->listener) impl_->listener->close();
  for (Entry& e : impl_->entries) *e.live = false;
  impl_->entries.clear();
}

PreviewUrls PreviewProxy::publish(executors::Sandbox& sandbox, std::string_view job, uint16_t port) {
  return publish_as(sandbox, job, port, make_preview_token());
}

PreviewUrls PreviewProxy::publish_as(executors::Sandbox& sandbox, std::string_view job, uint16_t port,
                                     const std::string& token) {
  // Read back from the agent's own data directory, but checked all the same: a token is part
  // of a host name and a path, and must stay as unguessable as a fresh one.
  bool fresh_form = token.size() == 16 && std::all_of(token.begin(), token.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
  });
  Entry e;
  e.token = fresh_form ? token : make_preview_token();
  e.job = preview_job_label(job);
  e.sandbox = &sandbox;
  e.port = port;
  impl_->entries.push_back(e);
  bool bound = impl_->listener != nullptr;
  auto ep = bound ? impl_->listener->local_endpoint() : tcp::endpoint();
  std::string lport = std::to_string(ep.port());
  std::string laddr = bound ? ep.address().to_string() : "127.0.0.1";
  if (bound && ep.address().is_v6()) laddr = "[" + laddr + "]";
  if (bound && ep.address().is_unspecified()) laddr = "localhost";
  PreviewUrls urls;
  urls.host_url = "http://" + std::to_string(port) + "-" + e.job + "-" + e.token + "." +
                  impl_->domain + ":" + lport + "/";
  urls.path_url = "http://" + laddr + ":" + lport + "/preview/" + e.token + "/";
  urls.token = e.token;
  return urls;
}

void PreviewProxy::expire_at(executors::Sandbox& sandbox, Clock::time_point until) {
  for (Entry& e : impl_->entries) {
    if (e.sandbox == &sandbox) e.until = until;
  }
}

void PreviewProxy::withdraw(executors::Sandbox& sandbox) {
  for (Entry& e : impl_->entries) {
    if (e.sandbox == &sandbox) *e.live = false;
  }
  std::erase_if(impl_->entries, [&](const Entry& e) { return e.sandbox == &sandbox; });
}

void PreviewProxy::withdraw(executors::Sandbox& sandbox, uint16_t port) {
  auto of_port = [&](const Entry& e) { return e.sandbox == &sandbox && e.port == port; };
  for (Entry& e : impl_->entries) {
    if (of_port(e)) *e.live = false;
  }
  std::erase_if(impl_->entries, of_port);
}

}  // namespace boxcar::agent
