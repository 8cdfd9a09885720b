#include "network/dns_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "base/unique_fd.h"
#include "network/dns_message.h"
#include "testing/dns_upstream.h"
#include "testing/private_hosts_file.h"

namespace boxcar::network {
namespace {

namespace ip = boost::asio::ip;
using Bytes = std::vector<uint8_t>;
using namespace std::chrono_literals;

constexpr uint16_t kPort = 5353;

// A loopback address of this process's own, so parallel test processes never share a port.
std::string listen_address() {
  const unsigned pid = static_cast<unsigned>(::getpid());
  return "127.53." + std::to_string((pid >> 8) & 0xff) + "." + std::to_string((pid & 0xff) | 1);
}

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
uint16_t at16(const Bytes& b, size_t i) { return static_cast<uint16_t>(b[i] << 8 | b[i + 1]); }

Bytes query(const std::string& name, uint16_t qtype, uint16_t id, bool edns = true) {
  Bytes b;
  put16(b, id);
  put16(b, 0x0100);
  put16(b, 1);
  put16(b, 0);
  put16(b, 0);
  put16(b, edns ? 1 : 0);
  for (size_t start = 0, dot; start <= name.size(); start = dot + 1) {
    dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    b.push_back(static_cast<uint8_t>(dot - start));
    b.insert(b.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
  }
  b.push_back(0);
  put16(b, qtype);
  put16(b, dns::class_in);
  if (edns) b.insert(b.end(), {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});  // OPT, 1232 bytes
  return b;
}

int rcode(const Bytes& r) { return r.size() >= 4 ? r[3] & 0xF : -1; }
int answers(const Bytes& r) { return r.size() >= 8 ? at16(r, 6) : -1; }
bool has_text(const Bytes& r, const std::string& text) {
  return std::string(r.begin(), r.end()).find(text) != std::string::npos;
}
// The first answer's TTL and address (A or AAAA) of a response to `q`.
uint32_t first_ttl(const Bytes& q, const Bytes& r) {
  const size_t at = q.size() - (q[11] ? 11 : 0) + 6;
  return static_cast<uint32_t>(at16(r, at)) << 16 | at16(r, at + 2);
}

unique_fd udp_socket() {
  unique_fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  timeval tv{30, 0};  // only so that a broken server fails the test instead of hanging it
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

sockaddr_in server_addr() {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(kPort);
  ::inet_pton(AF_INET, listen_address().c_str(), &sin.sin_addr);
  return sin;
}

void udp_send(int fd, const Bytes& b) {
  const sockaddr_in to = server_addr();
  ::sendto(fd, b.data(), b.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
}

Bytes udp_receive(int fd) {
  Bytes buf(65536);
  const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
  buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return buf;
}

Bytes udp_ask(const Bytes& q) {
  unique_fd fd = udp_socket();
  udp_send(fd.get(), q);
  return udp_receive(fd.get());
}

unique_fd tcp_connect() {
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{30, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const sockaddr_in to = server_addr();
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) return {};
  return fd;
}

bool write_all(int fd, const Bytes& b) {
  for (size_t done = 0; done < b.size();) {
    const ssize_t n = ::send(fd, b.data() + done, b.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool read_exact(int fd, uint8_t* p, size_t n) {
  for (size_t done = 0; done < n;) {
    const ssize_t r = ::recv(fd, p + done, n - done, 0);
    if (r <= 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}

void tcp_send(int fd, const Bytes& q) {
  Bytes framed;
  put16(framed, static_cast<uint16_t>(q.size()));
  framed.insert(framed.end(), q.begin(), q.end());
  write_all(fd, framed);
}

// The next framed message; empty when the server closed the connection.
Bytes tcp_receive(int fd) {
  uint8_t len[2];
  if (!read_exact(fd, len, 2)) return {};
  Bytes r(static_cast<size_t>(len[0] << 8 | len[1]));
  if (!read_exact(fd, r.data(), r.size())) return {};
  return r;
}

// True once the server has closed `fd` (read gives end of file or a reset).
bool closed_by_server(int fd) {
  uint8_t b;
  return ::recv(fd, &b, 1, 0) <= 0;
}

class RecordingPolicy : public DnsPolicy {
 public:
  std::optional<std::string> refuse(std::string_view name) override {
    if (name == "refused.test") return "not in any step's egress list (boxcar egress policy)";
    return std::nullopt;
  }
  void answered(std::string_view name, const std::vector<ip::address>& addresses, uint32_t ttl) override {
    std::lock_guard lock(mu);
    seen.push_back({std::string(name), addresses, ttl});
  }
  struct Seen {
    std::string name;
    std::vector<ip::address> addresses;
    uint32_t ttl;
  };
  std::vector<Seen> answers() {
    std::lock_guard lock(mu);
    return seen;
  }
  std::mutex mu;
  std::vector<Seen> seen;
};

class DnsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string hosts = "192.0.2.10 build-cache.test refused.test\n2001:db8::10 build-cache.test\n"
                        "192.0.2.12 v4only.test\n";
    for (int i = 1; i <= 40; ++i) hosts += "2001:db8::1:" + std::to_string(i) + " many.test\n";
    ASSERT_TRUE(boxcar::testing::set_private_hosts(hosts));
    upstream_.add("ttl-long.test", {ip::make_address("198.51.100.1")}, 86400);
    upstream_.add("ttl-short.test", {ip::make_address("198.51.100.2")}, 1);
    upstream_.silence("slow.test");
    auto r = HostResolver::make(upstream_.server());
    ASSERT_TRUE(r.ok()) << r.error().message;
    resolver_ = std::move(*r);
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    stop_server();
    work_.reset();
    io_thread_.join();
    resolver_.reset();
  }

  // The server is made and destroyed on the io thread, where it lives.
  Status start_server(DnsServerOptions o = {}) {
    o.listen = {ip::make_address(listen_address())};
    o.port = kPort;
    std::promise<Status> done;
    boost::asio::post(io_, [&] {
      auto s = DnsServer::make(io_, *resolver_, policy_, o);
      if (!s.ok()) return done.set_value(s.error());
      server_ = std::move(*s);
      done.set_value({});
    });
    return done.get_future().get();
  }
  void stop_server() {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      server_.reset();
      done.set_value();
    });
    done.get_future().wait();
  }

  boxcar::testing::DnsUpstream upstream_;
  std::unique_ptr<HostResolver> resolver_;
  RecordingPolicy policy_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread io_thread_;
  std::unique_ptr<DnsServer> server_;
};

TEST_F(DnsServerTest, AnswersAHostsNameOverUdpAndTcpAndTellsThePolicyFirst) {
  ASSERT_TRUE(start_server());
  const Bytes q = query("Build-Cache.test", dns::type_a, 0xbeef, false);
  const Bytes r = udp_ask(q);
  ASSERT_GE(r.size(), q.size());
  EXPECT_EQ(at16(r, 0), 0xbeef);
  EXPECT_EQ(at16(r, 2), 0x8180);  // QR, RD copied, RA, NOERROR
  EXPECT_EQ(Bytes(r.begin() + 12, r.begin() + static_cast<long>(q.size())), Bytes(q.begin() + 12, q.end()));
  EXPECT_EQ(answers(r), 1);
  EXPECT_EQ(first_ttl(q, r), 30u);  // /etc/hosts says 0: clamped to the minimum
  EXPECT_EQ(Bytes(r.end() - 4, r.end()), (Bytes{192, 0, 2, 10}));
  // The reply was in the client's hands only after the policy had the address.
  auto seen = policy_.answers();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].name, "build-cache.test");
  EXPECT_EQ(seen[0].addresses, std::vector<ip::address>{ip::make_address("192.0.2.10")});
  EXPECT_EQ(seen[0].ttl, 30u);

  unique_fd c = tcp_connect();
  ASSERT_TRUE(c);
  tcp_send(c.get(), query("build-cache.test", dns::type_aaaa, 7));
  const Bytes six = tcp_receive(c.get());
  EXPECT_EQ(rcode(six), dns::noerror);
  EXPECT_EQ(answers(six), 1);
  EXPECT_TRUE(has_text(six, std::string("\x20\x01\x0d\xb8", 4)));
}

TEST_F(DnsServerTest, TtlIsClampedToTheRange) {
  DnsServerOptions o;
  o.min_ttl_seconds = 30;
  o.max_ttl_seconds = 300;
  ASSERT_TRUE(start_server(o));
  const Bytes long_q = query("ttl-long.test", dns::type_a, 1);
  EXPECT_EQ(first_ttl(long_q, udp_ask(long_q)), 300u);
  const Bytes short_q = query("ttl-short.test", dns::type_a, 2);
  EXPECT_EQ(first_ttl(short_q, udp_ask(short_q)), 30u);
}

TEST_F(DnsServerTest, NxdomainForMissingNamesAndForAddressesAskedAsNames) {
  ASSERT_TRUE(start_server());
  EXPECT_EQ(rcode(udp_ask(query("missing.test", dns::type_a, 1))), dns::nxdomain);
  // Attack: "10.0.0.5" as a name would come back as 10.0.0.5 from c-ares and be allowed.
  const int before = upstream_.queries();
  EXPECT_EQ(rcode(udp_ask(query("10.0.0.5", dns::type_a, 2))), dns::nxdomain);
  EXPECT_EQ(upstream_.queries(), before);
  EXPECT_TRUE(policy_.answers().empty());
}

TEST_F(DnsServerTest, TheMissingFamilyOfAHostsNameIsNoDataNotNxdomain) {
  ASSERT_TRUE(start_server());
  // The upstream says NXDOMAIN for v4only.test's AAAA; the name exists, so: no data.
  const Bytes six = udp_ask(query("v4only.test", dns::type_aaaa, 1));
  EXPECT_EQ(rcode(six), dns::noerror);
  EXPECT_EQ(answers(six), 0);
  EXPECT_TRUE(policy_.answers().empty());  // the A record was not given: not in the allowed set
  EXPECT_EQ(answers(udp_ask(query("v4only.test", dns::type_a, 2))), 1);  // control
  EXPECT_EQ(rcode(udp_ask(query("missing.test", dns::type_aaaa, 3))), dns::nxdomain);
}

TEST_F(DnsServerTest, APolicyRefusalIsRefusedWithItsReasonAndNotLookedUp) {
  ASSERT_TRUE(start_server());
  const Bytes r = udp_ask(query("refused.test", dns::type_a, 9));
  EXPECT_EQ(rcode(r), dns::refused);
  EXPECT_EQ(answers(r), 0);
  EXPECT_TRUE(has_text(r, "not in any step's egress list (boxcar egress policy)"));
  EXPECT_TRUE(policy_.answers().empty());
  // Control: the same server answers an allowed name.
  EXPECT_EQ(answers(udp_ask(query("build-cache.test", dns::type_a, 10))), 1);
}

TEST_F(DnsServerTest, OtherTypesGetNoDataAndNothingIsAskedUpstream) {
  ASSERT_TRUE(start_server());
  const int before = upstream_.queries();
  for (uint16_t type : {16 /*TXT*/, 15 /*MX*/, 255 /*ANY*/}) {
    const Bytes r = udp_ask(query("data.tunnel.test", type, type));
    EXPECT_EQ(rcode(r), dns::noerror);
    EXPECT_EQ(answers(r), 0);
  }
  EXPECT_EQ(upstream_.queries(), before);
}

TEST_F(DnsServerTest, MalformedNonQueryAndResponsesAreAnsweredOrDropped) {
  ASSERT_TRUE(start_server());
  unique_fd fd = udp_socket();
  Bytes two = query("a.test", dns::type_a, 0x0101, false);
  two[5] = 2;  // qdcount 2
  udp_send(fd.get(), two);
  Bytes r = udp_receive(fd.get());
  EXPECT_EQ(at16(r, 0), 0x0101);
  EXPECT_EQ(rcode(r), dns::formerr);
  Bytes update = query("a.test", dns::type_a, 0x0202, false);
  update[2] = 0x28;  // opcode UPDATE
  udp_send(fd.get(), update);
  r = udp_receive(fd.get());
  EXPECT_EQ(at16(r, 0), 0x0202);
  EXPECT_EQ(rcode(r), dns::notimp);
  // A response and a runt get nothing: the next datagram back answers the good query after them.
  Bytes response = query("a.test", dns::type_a, 0x0303, false);
  response[2] |= 0x80;
  udp_send(fd.get(), response);
  udp_send(fd.get(), Bytes{1, 2, 3});
  udp_send(fd.get(), query("build-cache.test", dns::type_a, 0x0404, false));
  r = udp_receive(fd.get());
  EXPECT_EQ(at16(r, 0), 0x0404);
  EXPECT_EQ(answers(r), 1);
}

TEST_F(DnsServerTest, ATimeoutIsServfail) {
  DnsServerOptions o;
  o.timeout = Millis(200);
  ASSERT_TRUE(start_server(o));
  const Bytes r = udp_ask(query("slow.test", dns::type_a, 5));
  EXPECT_EQ(rcode(r), dns::servfail);
  EXPECT_TRUE(has_text(r, "timed out"));
}

TEST_F(DnsServerTest, AUdpFloodBeyondMaxInFlightGetsServfailAndTheServerStillAnswers) {
  DnsServerOptions o;
  o.max_in_flight = 4;
  o.timeout = Millis(500);
  ASSERT_TRUE(start_server(o));
  unique_fd fd = udp_socket();
  constexpr int n = 60;
  for (int i = 0; i < n; ++i) udp_send(fd.get(), query("slow.test", dns::type_a, static_cast<uint16_t>(i)));
  int over_limit = 0, timed_out = 0;
  std::set<uint16_t> ids;
  for (int i = 0; i < n; ++i) {
    const Bytes r = udp_receive(fd.get());
    ASSERT_FALSE(r.empty()) << "answer " << i << " never came";
    ids.insert(at16(r, 0));
    EXPECT_EQ(rcode(r), dns::servfail);
    if (has_text(r, "max_in_flight 4")) ++over_limit;
    if (has_text(r, "timed out")) ++timed_out;
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(n));
  EXPECT_EQ(timed_out, 4);
  EXPECT_EQ(over_limit, n - 4);
  EXPECT_EQ(answers(udp_ask(query("build-cache.test", dns::type_a, 1))), 1);  // control
}

TEST_F(DnsServerTest, AnswersTooBigForUdpAreTruncatedAndWholeOverTcp) {
  ASSERT_TRUE(start_server());
  const Bytes r = udp_ask(query("many.test", dns::type_aaaa, 3, false));
  EXPECT_LE(r.size(), 512u);
  EXPECT_TRUE(r[2] & 0x02);  // TC: ask again over TCP
  EXPECT_EQ(answers(r), 0);
  unique_fd c = tcp_connect();
  tcp_send(c.get(), query("many.test", dns::type_aaaa, 4, false));
  const Bytes whole = tcp_receive(c.get());
  EXPECT_FALSE(whole[2] & 0x02);
  EXPECT_EQ(answers(whole), 40);
}

TEST_F(DnsServerTest, A64KiBTcpMessageIsAFormErrorAndNotAClientThatSendsNothingDns) {
  ASSERT_TRUE(start_server());
  unique_fd c = tcp_connect();
  Bytes big = query("build-cache.test", dns::type_a, 0x6464, false);
  big.resize(65535, 0xC0);
  tcp_send(c.get(), big);
  const Bytes r = tcp_receive(c.get());
  EXPECT_EQ(at16(r, 0), 0x6464);
  EXPECT_EQ(rcode(r), dns::formerr);
  // Not DNS at all (shorter than a header): the connection is closed.
  tcp_send(c.get(), Bytes{1, 2, 3});
  EXPECT_TRUE(closed_by_server(c.get()));
  unique_fd good = tcp_connect();  // control
  tcp_send(good.get(), query("build-cache.test", dns::type_a, 1));
  EXPECT_EQ(answers(tcp_receive(good.get())), 1);
}

TEST_F(DnsServerTest, TcpConnectionsBeyondTheLimitAreClosedAtOnce) {
  DnsServerOptions o;
  o.max_tcp_connections = 4;
  ASSERT_TRUE(start_server(o));
  std::vector<unique_fd> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(tcp_connect());
    tcp_send(held.back().get(), query("build-cache.test", dns::type_a, static_cast<uint16_t>(i)));
    ASSERT_EQ(answers(tcp_receive(held.back().get())), 1);  // accepted and served
  }
  unique_fd fifth = tcp_connect();
  ASSERT_TRUE(fifth);  // the kernel accepts it; the server closes it
  EXPECT_TRUE(closed_by_server(fifth.get()));
  // Control: the held connections still work.
  tcp_send(held[0].get(), query("build-cache.test", dns::type_a, 99));
  EXPECT_EQ(answers(tcp_receive(held[0].get())), 1);
}

TEST_F(DnsServerTest, SlowLorisConnectionsAreClosedWhenIdle) {
  DnsServerOptions o;
  o.max_tcp_connections = 4;
  o.tcp_idle_timeout = Millis(200);
  ASSERT_TRUE(start_server(o));
  std::vector<unique_fd> loris;
  for (int i = 0; i < 4; ++i) {
    loris.push_back(tcp_connect());
    write_all(loris.back().get(), Bytes{0, 40, 0x12});  // a length and one byte of 40, then nothing
  }
  for (auto& fd : loris) EXPECT_TRUE(closed_by_server(fd.get()));
  unique_fd good = tcp_connect();  // control: the slots are free again
  tcp_send(good.get(), query("build-cache.test", dns::type_a, 1));
  EXPECT_EQ(answers(tcp_receive(good.get())), 1);
}

TEST_F(DnsServerTest, DestroyedWithLookupsInFlight) {
  ASSERT_TRUE(start_server());
  unique_fd fd = udp_socket();
  for (int i = 0; i < 8; ++i) udp_send(fd.get(), query("slow.test", dns::type_a, static_cast<uint16_t>(i)));
  unique_fd c = tcp_connect();
  tcp_send(c.get(), query("slow.test", dns::type_aaaa, 100));
  // The TCP query is being looked up once the server answers a later one on the same connection.
  tcp_send(c.get(), query("build-cache.test", dns::type_a, 101));
  EXPECT_EQ(at16(tcp_receive(c.get()), 0), 101);
  stop_server();
  EXPECT_TRUE(closed_by_server(c.get()));
  ASSERT_TRUE(start_server());  // control: the address is free and a new server answers
  EXPECT_EQ(answers(udp_ask(query("build-cache.test", dns::type_a, 1))), 1);
}

TEST_F(DnsServerTest, BadOptionsAndAddressesAreClearErrors) {
  DnsServerOptions o;
  o.min_ttl_seconds = 600;
  o.max_ttl_seconds = 60;
  Status s = start_server(o);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("min_ttl_seconds"), std::string::npos);
  DnsServerOptions foreign;
  foreign.listen = {ip::make_address("192.0.2.200")};  // not an address of this machine
  foreign.port = kPort;
  auto other = DnsServer::make(io_, *resolver_, policy_, foreign);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("192.0.2.200:5353"), std::string::npos) << other.error().message;
}

}  // namespace
}  // namespace boxcar::network
