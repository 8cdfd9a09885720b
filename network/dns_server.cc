#include "network/dns_server.h"

#include <sys/socket.h>

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "network/dns_message.h"

namespace boxcar::network {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using Bytes = std::vector<uint8_t>;
using Send = std::function<void(Bytes)>;

constexpr size_t max_tcp_message = 65535;  // what the 2-byte length can say
constexpr size_t max_tcp_replies_queued = 16;  // a client that asks without reading is closed

// The resolver answers on its own thread; this is how an answer finds the io_context while the
// server lives, and nothing once it is gone (the io_context may be gone too).
struct Gate {
  std::mutex mu;
  asio::io_context* io = nullptr;
};

// "10.0.0.5" asked as a name: no top-level domain is all digits, so it names nothing. c-ares
// would hand the address back, and the policy would then allow it as if a name had resolved to it.
bool numeric_top_label(const std::string& name) {
  const size_t dot = name.rfind('.');
  const std::string_view top = std::string_view(name).substr(dot == std::string::npos ? 0 : dot + 1);
  return !top.empty() && top.find_first_not_of("0123456789") == std::string_view::npos;
}

class Core;

class TcpConnection : public std::enable_shared_from_this<TcpConnection> {
 public:
  TcpConnection(std::shared_ptr<Core> core, tcp::socket socket, Millis idle)
      : core_(std::move(core)), socket_(std::move(socket)), timer_(socket_.get_executor()), idle_(idle) {}
  void start() {
    arm();
    read_length();
  }
  void send(Bytes reply);
  void close();

 private:
  void arm();
  void read_length();
  void read_body(size_t n);
  void write_next();

  std::shared_ptr<Core> core_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  Millis idle_;
  std::array<uint8_t, 2> length_{};
  Bytes body_;
  std::deque<Bytes> out_;  // each with its length prefix
  bool writing_ = false, closed_ = false;
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(asio::io_context& io, HostResolver& resolver, DnsPolicy& policy, DnsServerOptions options)
      : io_(io), resolver_(resolver), policy_(policy), options_(std::move(options)),
        gate_(std::make_shared<Gate>()) {
    gate_->io = &io;
  }

  Status listen() {
    for (const auto& address : options_.listen) {
      const std::string where = (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
                                std::to_string(options_.port);
      boost::system::error_code ec;
      auto u = std::make_unique<UdpListener>(io_);
      const udp::endpoint uep(address, options_.port);
      u->socket.open(uep.protocol(), ec);
      if (!ec && address.is_v6()) u->socket.set_option(asio::ip::v6_only(true), ec);
      if (!ec) u->socket.bind(uep, ec);
      if (!ec) u->socket.non_blocking(true, ec);
      if (ec) return Error("DNS server: cannot listen on " + where + " (UDP): " + ec.message(), ec.value(),
                           ErrorCode::unavailable);
      udp_.push_back(std::move(u));
      auto a = std::make_unique<tcp::acceptor>(io_);
      const tcp::endpoint tep(address, options_.port);
      a->open(tep.protocol(), ec);
      if (!ec) a->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec && address.is_v6()) a->set_option(asio::ip::v6_only(true), ec);
      if (!ec) a->bind(tep, ec);
      if (!ec) a->listen(static_cast<int>(options_.max_tcp_connections), ec);
      if (ec) return Error("DNS server: cannot listen on " + where + " (TCP): " + ec.message(), ec.value(),
                           ErrorCode::unavailable);
      tcp_.push_back(std::move(a));
    }
    for (auto& u : udp_) receive(*u);
    for (auto& a : tcp_) accept(*a);
    return {};
  }

  void stop() {
    {
      std::lock_guard lock(gate_->mu);
      gate_->io = nullptr;
    }
    stopped_ = true;
    boost::system::error_code ec;
    for (auto& u : udp_) u->socket.close(ec);
    for (auto& a : tcp_) a->close(ec);
    auto conns = connections_;
    for (auto& c : conns) c->close();
    pending_.clear();
  }

  // The answer to one message, given to `send` now or once the host has resolved the name;
  // false when the message gets none (not a query at all).
  bool handle(std::span<const uint8_t> bytes, bool over_tcp, Send send) {
    dns::Parsed p = dns::parse(bytes);
    const size_t limit = over_tcp ? max_tcp_message : p.msg.udp_size;
    switch (p.kind) {
      case dns::Parsed::drop: return false;
      case dns::Parsed::formerr: send(dns::build(p.msg, dns::rcode_reply(dns::formerr), limit)); return true;
      case dns::Parsed::notimp: send(dns::build(p.msg, dns::rcode_reply(dns::notimp), limit)); return true;
      case dns::Parsed::query: answer(std::move(p.msg), limit, std::move(send)); return true;
    }
    return false;
  }

  void answer(dns::Query q, size_t limit, Send send) {
    auto reply = [&](dns::Reply r) { send(dns::build(q, r, limit)); };
    if (q.edns && q.edns_version != 0) return reply(dns::rcode_reply(dns::badvers));
    if (q.qclass != dns::class_in) return reply(dns::rcode_reply(dns::notimp));
    // Only addresses are looked up: other types get no data, so nothing else (TXT tunnels) leaves.
    if (q.qtype != dns::type_a && q.qtype != dns::type_aaaa) return reply(dns::Reply{});
    if (!q.host_name)
      return reply(dns::rcode_reply(dns::refused, dns::ExtendedError{dns::ede_filtered, "not a host name: labels of letters, digits, "
                                                                   "'-' and '_' only"}));
    if (numeric_top_label(q.name)) return reply(dns::rcode_reply(dns::nxdomain));
    if (auto why = policy_.refuse(q.name))
      return reply(dns::rcode_reply(dns::refused, dns::ExtendedError{dns::ede_filtered, *why}));
    if (pending_.size() >= options_.max_in_flight)
      return reply(dns::rcode_reply(dns::servfail, dns::ExtendedError{dns::ede_other, "too many lookups at once (max_in_flight " +
                                                                    std::to_string(options_.max_in_flight) + ")"}));
    const uint64_t id = next_id_++;
    const std::string name = q.name;
    const int family = q.qtype == dns::type_a ? AF_INET : AF_INET6;
    pending_.emplace(id, Pending{std::move(q), limit, std::move(send)});
    resolver_.resolve(name, family, options_.timeout,
                      [gate = gate_, self = weak_from_this(), id](Result<HostAnswer> r) {
                        std::lock_guard lock(gate->mu);
                        if (!gate->io) return;
                        asio::post(*gate->io, [self, id, r = std::move(r)]() mutable {
                          if (auto core = self.lock()) core->resolved(id, std::move(r));
                        });
                      });
  }

  void forget(const std::shared_ptr<TcpConnection>& c) { connections_.erase(c); }
  Millis tcp_idle_timeout() const { return options_.tcp_idle_timeout; }

 private:
  struct UdpListener {
    explicit UdpListener(asio::io_context& io) : socket(io) {}
    udp::socket socket;
    udp::endpoint from;
    std::array<uint8_t, 65536> buffer{};
  };
  struct Pending {
    dns::Query query;
    size_t limit;
    Send send;
  };

  void resolved(uint64_t id, Result<HostAnswer> r) {
    auto it = pending_.find(id);
    if (stopped_ || it == pending_.end()) return;
    Pending p = std::move(it->second);
    pending_.erase(it);
    dns::Reply reply;
    if (!r.ok()) {
      reply.rcode = dns::servfail;
      reply.error = dns::ExtendedError{dns::ede_no_reachable_authority, r.error().message};
    } else if (r->nxdomain) {
      reply.rcode = dns::nxdomain;
    } else {
      reply.ttl_seconds = std::clamp(r->ttl_seconds, options_.min_ttl_seconds, options_.max_ttl_seconds);
      reply.addresses = std::move(r->addresses);
      // Before the reply leaves: the step may connect the moment it has it.
      if (!reply.addresses.empty()) policy_.answered(p.query.name, reply.addresses, reply.ttl_seconds);
    }
    p.send(dns::build(p.query, reply, p.limit));
  }

  void receive(UdpListener& u) {
    u.socket.async_receive_from(asio::buffer(u.buffer), u.from,
                                [self = shared_from_this(), &u](boost::system::error_code ec, size_t n) {
                                  if (ec == asio::error::operation_aborted || self->stopped_) return;
                                  if (!ec) {
                                    self->handle(std::span(u.buffer.data(), n), false, [&u, to = u.from](Bytes b) {
                                      boost::system::error_code ignored;  // a full buffer drops it, as UDP may
                                      u.socket.send_to(asio::buffer(b), to, 0, ignored);
                                    });
                                  }
                                  self->receive(u);
                                });
  }

  void accept(tcp::acceptor& a) {
    a.async_accept([self = shared_from_this(), &a](boost::system::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || self->stopped_) return;
      if (!ec) {
        if (self->connections_.size() >= self->options_.max_tcp_connections) {
          s.close(ec);  // over the limit: closed at once
        } else {
          auto c = std::make_shared<TcpConnection>(self, std::move(s), self->options_.tcp_idle_timeout);
          self->connections_.insert(c);
          c->start();
        }
      }
      self->accept(a);
    });
  }

  asio::io_context& io_;
  HostResolver& resolver_;
  DnsPolicy& policy_;
  DnsServerOptions options_;
  std::shared_ptr<Gate> gate_;
  std::vector<std::unique_ptr<UdpListener>> udp_;
  std::vector<std::unique_ptr<tcp::acceptor>> tcp_;
  std::set<std::shared_ptr<TcpConnection>> connections_;
  std::map<uint64_t, Pending> pending_;
  uint64_t next_id_ = 1;
  bool stopped_ = false;
};

void TcpConnection::arm() {
  timer_.expires_after(idle_);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->close();  // idle: a slow client does not hold a connection slot
  });
}

void TcpConnection::read_length() {
  asio::async_read(socket_, asio::buffer(length_), [self = shared_from_this()](boost::system::error_code ec, size_t) {
    if (ec) return self->close();
    self->read_body(static_cast<size_t>(self->length_[0] << 8 | self->length_[1]));
  });
}

void TcpConnection::read_body(size_t n) {
  body_.resize(n);
  asio::async_read(socket_, asio::buffer(body_), [self = shared_from_this()](boost::system::error_code ec, size_t) {
    if (ec || self->closed_) return self->close();
    self->arm();  // a whole message: the client is alive
    std::weak_ptr<TcpConnection> weak = self;
    const bool dns = self->core_->handle(self->body_, true, [weak](Bytes b) {
      if (auto c = weak.lock()) c->send(std::move(b));
    });
    if (!dns) return self->close();  // not a DNS client: its slot goes to one
    if (!self->closed_) self->read_length();
  });
}

void TcpConnection::send(Bytes reply) {
  if (closed_) return;
  if (out_.size() >= max_tcp_replies_queued) return close();
  Bytes framed{static_cast<uint8_t>(reply.size() >> 8), static_cast<uint8_t>(reply.size())};
  framed.insert(framed.end(), reply.begin(), reply.end());
  out_.push_back(std::move(framed));
  if (!writing_) write_next();
}

void TcpConnection::write_next() {
  if (out_.empty() || closed_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(out_.front()), [self = shared_from_this()](boost::system::error_code ec, size_t) {
    if (ec) return self->close();
    self->out_.pop_front();
    self->write_next();
  });
}

void TcpConnection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  timer_.cancel();
  socket_.close(ec);
  auto core = std::move(core_);
  core->forget(shared_from_this());
}

class Server final : public DnsServer {
 public:
  explicit Server(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~Server() override { core_->stop(); }

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace

Result<std::unique_ptr<DnsServer>> DnsServer::make(asio::io_context& io, HostResolver& resolver, DnsPolicy& policy,
                                                   DnsServerOptions options) {
  if (options.listen.empty()) return Error("DNS server: no address to listen on", 0, ErrorCode::invalid_input);
  if (options.min_ttl_seconds > options.max_ttl_seconds)
    return Error("DNS server: min_ttl_seconds is above max_ttl_seconds", 0, ErrorCode::invalid_input);
  if (options.max_in_flight == 0 || options.max_tcp_connections == 0)
    return Error("DNS server: max_in_flight and max_tcp_connections must be at least 1", 0, ErrorCode::invalid_input);
  auto core = std::make_shared<Core>(io, resolver, policy, std::move(options));
  if (Status s = core->listen(); !s) {
    core->stop();
    return s.error();
  }
  return std::unique_ptr<DnsServer>(new Server(std::move(core)));
}

}  // namespace boxcar::network
