#include "testing/dns_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <array>
#include <stdexcept>

#include "network/dns_message.h"

namespace boxcar::testing {

namespace dns = network::dns;

DnsUpstream::DnsUpstream(const std::string& address) {
  fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  stop_.reset(::eventfd(0, EFD_CLOEXEC));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  ::inet_pton(AF_INET, address.c_str(), &sin.sin_addr);
  socklen_t len = sizeof sin;
  if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
      ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&sin), &len) != 0)
    throw std::runtime_error("DnsUpstream: bind " + address);
  server_ = address + ":" + std::to_string(ntohs(sin.sin_port));
  thread_ = std::thread([this] { run(); });
}

DnsUpstream::~DnsUpstream() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_.get(), &one, sizeof one);
  thread_.join();
}

std::string DnsUpstream::server() const { return server_; }

void DnsUpstream::add(const std::string& name, std::vector<boost::asio::ip::address> addresses, uint32_t ttl) {
  std::lock_guard lock(mu_);
  names_[name] = {std::move(addresses), ttl};
}

void DnsUpstream::silence(const std::string& name) {
  std::lock_guard lock(mu_);
  silent_.insert(name);
}

void DnsUpstream::run() {
  std::array<uint8_t, 4096> buf;
  for (;;) {
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 || fds[1].revents) return;
    sockaddr_storage from{};
    socklen_t flen = sizeof from;
    ssize_t n = ::recvfrom(fd_.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n <= 0) continue;
    ++queries_;
    dns::Parsed p = dns::parse(std::span(buf.data(), static_cast<size_t>(n)));
    if (p.kind != dns::Parsed::query) continue;
    dns::Reply reply;
    {
      std::lock_guard lock(mu_);
      if (silent_.count(p.msg.name)) continue;
      auto it = names_.find(p.msg.name);
      if (it == names_.end()) {
        reply.rcode = dns::nxdomain;
      } else {
        reply.addresses = it->second.first;
        reply.ttl_seconds = it->second.second;
      }
    }
    const auto out = dns::build(p.msg, reply, p.msg.udp_size);
    ::sendto(fd_.get(), out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
  }
}

}  // namespace boxcar::testing
