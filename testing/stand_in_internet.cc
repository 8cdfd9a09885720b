#include "testing/stand_in_internet.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "network/netlink.h"

namespace boxcar::testing {

namespace {

namespace ip = boost::asio::ip;
constexpr const char* kHostSide = "198.18.0.1";  // the link: benchmarking range, not refused by `public`
constexpr const char* kFarSide = "198.18.0.2";
constexpr const char* kHostSide6 = "2001:db8:1ff::1";  // the link, IPv6: documentation prefix
constexpr const char* kFarSide6 = "2001:db8:1ff::2";

Error err(const std::string& what, int e = errno) {
  return Error{"stand-in internet: " + what + ": " + std::strerror(e), e};
}

}  // namespace

Result<std::unique_ptr<StandInInternet>> StandInInternet::make() {
  std::unique_ptr<StandInInternet> net(new StandInInternet);
  net->veth_ = "bxsi" + std::to_string(::getpid() % 100000);
  auto host = network::Netlink::open();
  if (!host) return host.error();

  // The far side: its own namespace with the servers' addresses on lo and a listener on port 80.
  unique_fd back(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (::unshare(CLONE_NEWNET) != 0) return err("unshare");
  net->ns_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  auto inside = network::Netlink::open();
  net->listener_.reset(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::setns(back.get(), CLONE_NEWNET) != 0) std::abort();
  if (!inside) return inside.error();
  int one = 1, zero = 0;
  ::setsockopt(net->listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(net->listener_.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // and IPv4
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_port = htons(80);
  if (::bind(net->listener_.get(), reinterpret_cast<sockaddr*>(&any), sizeof any) != 0 ||
      ::listen(net->listener_.get(), 64) != 0)
    return err("listening on port 80");

  if (auto s = host->create_veth(net->veth_, "eth0", net->ns_.get(), 2); !s) return s.error();
  net->veth_made_ = true;
  int index = static_cast<int>(::if_nametoindex(net->veth_.c_str()));
  if (auto s = host->add_address(index, ip::make_address(kHostSide), 30); !s) return s.error();
  if (auto s = host->add_address(index, ip::make_address(kHostSide6), 64); !s) return s.error();
  if (auto s = host->set_up(net->veth_); !s) return s.error();
  if (auto s = inside->set_up("lo"); !s) return s.error();
  for (const char* a : {kWebA, kWebB, kMetadata})
    if (auto s = inside->add_address(1, ip::make_address(a), 32); !s) return s.error();
  if (auto s = inside->add_address(1, ip::make_address(kWebV6), 128); !s) return s.error();
  if (auto s = inside->add_address(2, ip::make_address(kFarSide), 30); !s) return s.error();
  if (auto s = inside->add_address(2, ip::make_address(kFarSide6), 64); !s) return s.error();
  if (auto s = inside->set_up("eth0"); !s) return s.error();
  if (auto s = inside->add_route(2, ip::address_v4::any(), 0, ip::make_address(kHostSide)); !s) return s.error();
  if (auto s = inside->add_route(2, ip::address_v6::any(), 0, ip::make_address(kHostSide6)); !s) return s.error();
  if (auto s = host->add_route(index, ip::make_address(kWebV6), 128, ip::make_address(kFarSide6)); !s)
    return Error{s.error().message + " (is another stand-in internet up on this machine?)", s.error().err};
  for (const char* a : {kWebA, kWebB, kMetadata})
    if (auto s = host->add_route(index, ip::make_address(a), 32, ip::make_address(kFarSide)); !s)
      return Error{s.error().message + " (is another stand-in internet up on this machine?)", s.error().err};

  net->stop_.reset(::eventfd(0, EFD_CLOEXEC));
  net->server_ = std::thread([n = net.get()] { n->serve(); });
  return net;
}

void StandInInternet::serve() {
  for (;;) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents) return;
    unique_fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) continue;
    sockaddr_in6 local{};
    socklen_t len = sizeof local;
    ::getsockname(c.get(), reinterpret_cast<sockaddr*>(&local), &len);
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, &local.sin6_addr, text, sizeof text);
    std::string address = text;
    if (address.starts_with("::ffff:")) address = address.substr(7);  // an IPv4 client
    char request[1024];
    (void)!::read(c.get(), request, sizeof request);  // one read: the probes send one small request
    std::string body = body_of(address);
    std::string reply = "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    (void)!::write(c.get(), reply.data(), reply.size());
  }
}

StandInInternet::~StandInInternet() {
  if (server_.joinable()) {
    uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    server_.join();
  }
  // The routes go with the link; the namespace with its last fd.
  if (veth_made_)
    if (auto nl = network::Netlink::open()) (void)nl->delete_link(veth_);
}

}  // namespace boxcar::testing
