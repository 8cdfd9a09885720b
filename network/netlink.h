// Netlink: rtnetlink over libmnl in one network namespace (the calling thread's when it was
// opened: the socket stays there), for what a job network needs in microseconds rather than
// `ip` processes: a veth pair with its peer created inside another namespace, addresses, routes,
// links up and deleted.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include <boost/asio/ip/address.hpp>

#include "base/result.h"

struct mnl_socket;

namespace boxcar::network {

class Netlink {
 public:
  static Result<Netlink> open();

  // A veth pair: `name` here, `peer` inside the namespace `peer_netns_fd` with interface index
  // `peer_index` there (a fresh namespace has only lo = 1, so callers know it without asking).
  Status create_veth(std::string_view name, std::string_view peer, int peer_netns_fd, int peer_index);
  // Err ENODEV when there is no such link.
  Status delete_link(std::string_view name);
  Status set_up(std::string_view name);
  // IPv6 addresses without duplicate address detection, so they are usable at once.
  Status add_address(int index, const boost::asio::ip::address& address, unsigned prefix);
  // `dst`/`prefix` 0 is the default route; no gateway: on-link.
  Status add_route(int index, const boost::asio::ip::address& dst, unsigned prefix,
                   const std::optional<boost::asio::ip::address>& gateway);

 private:
  struct Close {
    void operator()(mnl_socket* s) const;
  };
  Netlink(mnl_socket* s, unsigned portid) : sock_(s), portid_(portid) {}
  Status talk(void* nlh, const char* what);

  std::unique_ptr<mnl_socket, Close> sock_;
  unsigned portid_ = 0;
  uint32_t seq_ = 1;
};

}  // namespace boxcar::network
