#include "network/netlink.h"

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace boxcar::network {

namespace {

Error nl_error(const char* what, int e) {
  return Error{std::string("netlink: ") + what + ": " + std::strerror(e), e, ErrorCode::unavailable};
}

void put_address(nlmsghdr* nlh, uint16_t type, const boost::asio::ip::address& a) {
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    mnl_attr_put(nlh, type, b.size(), b.data());
  } else {
    auto b = a.to_v6().to_bytes();
    mnl_attr_put(nlh, type, b.size(), b.data());
  }
}

nlmsghdr* header(std::vector<char>& buf, uint16_t type, uint16_t flags, uint32_t seq) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  nlh->nlmsg_seq = seq;
  return nlh;
}

}  // namespace

void Netlink::Close::operator()(mnl_socket* s) const { mnl_socket_close(s); }

Result<Netlink> Netlink::open() {
  mnl_socket* s = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!s) return nl_error("socket", errno);
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
    int e = errno;
    mnl_socket_close(s);
    return nl_error("bind", e);
  }
  return Netlink(s, mnl_socket_get_portid(s));
}

Status Netlink::talk(void* p, const char* what) {
  auto* nlh = static_cast<nlmsghdr*>(p);
  if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0) return nl_error(what, errno);
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
    if (n < 0) return nl_error(what, errno);
    int rc = mnl_cb_run(buf.data(), n, nlh->nlmsg_seq, portid_, nullptr, nullptr);
    if (rc < 0) return nl_error(what, errno);
    if (rc == MNL_CB_STOP) return {};
  }
}

Status Netlink::create_veth(std::string_view name, std::string_view peer, int peer_netns_fd, int peer_index) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = header(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, seq_++);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, std::string(name).c_str());
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer_attr = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  // The peer's attributes are an ifinfomsg followed by its own attributes.
  auto* pifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  pifm->ifi_family = AF_UNSPEC;
  pifm->ifi_index = peer_index;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, std::string(peer).c_str());
  mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  mnl_attr_nest_end(nlh, peer_attr);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  return talk(nlh, "creating a veth pair");
}

Status Netlink::delete_link(std::string_view name) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = header(buf, RTM_DELLINK, 0, seq_++);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, std::string(name).c_str());
  return talk(nlh, "deleting a link");
}

Status Netlink::set_up(std::string_view name) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = header(buf, RTM_NEWLINK, 0, seq_++);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, std::string(name).c_str());
  return talk(nlh, "setting a link up");
}

Status Netlink::add_address(int index, const boost::asio::ip::address& address, unsigned prefix) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = header(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, seq_++);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = address.is_v4() ? AF_INET : AF_INET6;
  ifa->ifa_prefixlen = static_cast<unsigned char>(prefix);
  ifa->ifa_index = static_cast<unsigned>(index);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  put_address(nlh, IFA_LOCAL, address);
  put_address(nlh, IFA_ADDRESS, address);
  if (address.is_v6()) mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
  return talk(nlh, "adding an address");
}

Status Netlink::add_route(int index, const boost::asio::ip::address& dst, unsigned prefix,
                          const std::optional<boost::asio::ip::address>& gateway) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = header(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, seq_++);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = dst.is_v4() ? AF_INET : AF_INET6;
  rtm->rtm_dst_len = static_cast<unsigned char>(prefix);
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_STATIC;
  rtm->rtm_scope = gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rtm->rtm_type = RTN_UNICAST;
  if (prefix > 0) put_address(nlh, RTA_DST, dst);
  if (gateway) put_address(nlh, RTA_GATEWAY, *gateway);
  mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(index));
  return talk(nlh, "adding a route");
}

}  // namespace boxcar::network
