// Attacks on a job network from inside real steps (native, and oci on runc): raw and packet
// sockets, spoofed source addresses, DNS to a server other than the job's resolver, the
// machine's IPv6 link-local address, and changing the job's own rules; each beside a control
// where the same path reaches something. The policy and the machine-side backstop are
// network/job_network.h's; the stand-in internet is testing/stand_in_internet.h's.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <chrono>
#include <thread>

#include "network/job_network.h"
#include "network/job_rules.h"
#include "testing/job_network_slot.h"
#include "testing/stand_in_internet.h"
#include "tests/security/security_fixture.h"

namespace boxcar::executors {
namespace {

// The IPv6 link-local address of interface `name` on the machine, or "".
std::string link_local_of(const std::string& name) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return {};
  std::string found;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET6 || name != a->ifa_name) continue;
    auto* in6 = reinterpret_cast<sockaddr_in6*>(a->ifa_addr);
    if (!IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) continue;
    char buf[INET6_ADDRSTRLEN];
    ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    found = buf;
  }
  ::freeifaddrs(list);
  return found;
}

class JobNetworkAttackTest : public SecurityTest {
 protected:
  void SetUp() override {
    SecurityTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto internet = boxcar::testing::StandInInternet::make();
    ASSERT_TRUE(internet.ok()) << internet.error().message;
    internet_ = std::move(*internet);
    auto host = network::NetworkHost::make(io_, {});
    ASSERT_TRUE(host.ok()) << host.error().message;
    networks_ = std::move(*host);
    auto net = networks_->create_job("security-net");
    ASSERT_TRUE(net.ok()) << net.error().message;
    network_ = std::move(*net);
    JobSpec js{"security-net", workspace_};
    js.netns_fd = network_->netns_fd();
    js.resolv_conf = network_->resolv_conf();
    auto job = executor_->prepare(js);
    ASSERT_TRUE(job.ok()) << job.error().message;
    net_job_ = std::move(*job);
    auto net_class = network_->add_step("probe", std::nullopt);
    ASSERT_TRUE(net_class.ok()) << net_class.error().message;
    class_ = *net_class;
  }
  void TearDown() override {
    if (net_job_) net_job_->destroy();
    SecurityTest::TearDown();
    net_job_.reset();
    network_.reset();
    networks_.reset();
    internet_.reset();
  }

  Ran on_job_network(const std::string& script) {
    SandboxSpec s = spec("net-probe");
    s.net_class = class_;
    auto sb = start(s, net_job_.get());
    if (!sb) return {};
    return in_sandbox(*sb, script);
  }

  // Runs a python3 program in the step (a probe needs sockets a shell does not have).
  Ran python(const std::string& program) { return on_job_network("python3 - <<'PY'\n" + program + "\nPY\n"); }

  std::unique_ptr<boxcar::testing::StandInInternet> internet_;
  std::unique_ptr<network::NetworkHost> networks_;
  std::unique_ptr<network::JobNetwork> network_;
  std::unique_ptr<Job> net_job_;
  uint32_t class_ = 0;
};

constexpr const char* kConnect = R"(
import socket, sys
def tcp(addr, port, source=None, family=socket.AF_INET, timeout=3):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: bind an address the job does not have
        s.bind((source, 0))
    try:
        s.connect(socket.getaddrinfo(addr, port, family, socket.SOCK_STREAM)[0][4])  # "%eth0" scopes
        return "connected"
    except Exception as e:
        return type(e).__name__ + " " + str(e)
)";

TEST_P(JobNetworkAttackTest, RawAndPacketSocketsAreRefusedButPingSocketsWork) {
  Ran r = python(R"(
import socket
for name, args in [("raw", (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)),
                   ("raw6", (socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)),
                   ("packet", (socket.AF_PACKET, socket.SOCK_RAW, 0)),
                   ("ping", (socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP))]:
    try:
        socket.socket(*args); print(name, "opened")
    except Exception as e:
        print(name, type(e).__name__, e)
)");
  EXPECT_NE(r.out.find("raw PermissionError"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("raw6 PermissionError"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("packet "), std::string::npos) << r.out;  // EPERM, or seccomp's EAFNOSUPPORT
  EXPECT_EQ(r.out.find("packet opened"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ping opened"), std::string::npos) << r.out;  // control: the probe opens sockets
}

// IPv4: the kernel itself refuses a source the job does not have (IP_FREEBIND binds it, but
// sending needs IP_TRANSPARENT, i.e. CAP_NET_ADMIN in the job's namespace). IPv6 lets
// IPV6_FREEBIND send from any source, so there the machine's table must drop it: its `dropped`
// counter counts the packets, and the control shows the same socket code gets out unspoofed.
TEST_P(JobNetworkAttackTest, ASpoofedSourceAddressGetsNothingThrough) {
  Ran r = python(std::string(kConnect) + R"(
print("own", tcp("198.51.100.10", 80))
print("spoofed", tcp("198.51.100.10", 80, source="198.51.100.77"))
print("spoofed-job-range", tcp("198.51.100.10", 80, source="10.213.255.254"))
)");
  EXPECT_NE(r.out.find("own connected"), std::string::npos) << r.out << r.err;  // control
  EXPECT_NE(r.out.find("spoofed OSError"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("spoofed-job-range OSError"), std::string::npos) << r.out;

  if (network_->address_v6().empty()) return;
  std::string table = network::host_table_name(boxcar::testing::job_network_slot(network_->address_v4()));
  auto dropped = [&] {
    Ran c = on_host("nft -j list counter inet " + table + " dropped");
    size_t at = c.out.find("\"packets\": ");
    return at == std::string::npos ? -1L : std::stol(c.out.substr(at + 11));
  };
  long before = dropped();
  ASSERT_GE(before, 0);
  std::string job6 = network_->address_v6();
  std::string spoofed6 = job6.substr(0, job6.rfind(':') + 1) + "99";  // the job's /64, not its address
  Ran r6 = python(R"(
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, 78, 1)  # IPV6_FREEBIND
s.bind((")" + spoofed6 + R"(", 0))
# A query to the resolver from the job's own address first: the gateway's neighbour entry is
# then known, and the spoofed packets leave at once rather than after neighbour discovery.
gw6 = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver") and ":" in l][0]
own = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); own.settimeout(3)
own.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01", (gw6, 53)); own.recv(512)
for _ in range(3): s.sendto(b"spoofed", ("2001:db8:ffff::1", 9))
print("sent6")
)");
  EXPECT_NE(r6.out.find("sent6"), std::string::npos) << r6.out << r6.err;  // the packets left the step...
  // ...(the machine counts them as they arrive)...
  long after = dropped();
  for (int i = 0; i < 250 && after - before < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    after = dropped();
  }
  EXPECT_GE(after - before, 3) << r6.out;  // ...and went no further
}

TEST_P(JobNetworkAttackTest, DnsGoesOnlyToTheJobsResolver) {
  Ran r = python(std::string(kConnect) + R"(
import struct
resolver = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x09localhost\x00" + struct.pack(">HH", 1, 1)
def udp(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    try:
        s.sendto(query, (addr, 53)); data = s.recv(512); return "answered" if data[:2] == b"\x12\x34" else "garbage"
    except Exception as e:
        return type(e).__name__
print("resolver", udp(resolver))
print("other-udp", udp("198.51.100.10"))
print("other-tcp", tcp("198.51.100.10", 53))
print("web", tcp("198.51.100.10", 80))
)");
  EXPECT_NE(r.out.find("resolver answered"), std::string::npos) << r.out << r.err;  // control
  EXPECT_NE(r.out.find("web connected"), std::string::npos) << r.out;              // control
  EXPECT_EQ(r.out.find("other-udp answered"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("other-tcp ConnectionRefusedError"), std::string::npos) << r.out;
  network::EgressReport report = network_->report(class_);
  std::string line = network::describe(report);
  EXPECT_NE(line.find("198.51.100.10:53 (DNS goes only to the job's resolver)"), std::string::npos) << line;
  EXPECT_NE(line.find("198.51.100.10:53/udp"), std::string::npos) << line;
}

TEST_P(JobNetworkAttackTest, TheMachinesLinkLocalAddressIsClosed) {
  if (network_->address_v6().empty()) GTEST_SKIP() << "the machine has no IPv6 default route: jobs get no IPv6";
  int slot = boxcar::testing::job_network_slot(network_->address_v4());
  std::string gateway_link_local = link_local_of(network::host_link_name(slot));
  ASSERT_FALSE(gateway_link_local.empty());
  Ran r = python(std::string(kConnect) + R"(
gw6 = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver") and ":" in l][0]
print("gateway-dns", tcp(gw6, 53, family=socket.AF_INET6))
print("link-local-dns", tcp(")" + gateway_link_local + R"(%eth0", 53, family=socket.AF_INET6))
print("link-local-ssh", tcp(")" + gateway_link_local + R"(%eth0", 22, family=socket.AF_INET6))
)");
  EXPECT_NE(r.out.find("gateway-dns connected"), std::string::npos) << r.out << r.err;  // control
  EXPECT_NE(r.out.find("link-local-dns ConnectionRefusedError"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("link-local-ssh ConnectionRefusedError"), std::string::npos) << r.out;
  std::string line = network::describe(network_->report(class_));
  EXPECT_NE(line.find("[" + gateway_link_local + "]:22 (the agent machine's own address)"), std::string::npos) << line;
}

// A server in a step is for the job (its other steps, previews through loopback): neither the
// machine nor anything routed through it (another job, a step on the host's network, a stale NAT
// entry of the slot's previous job) opens a connection to it.
TEST_P(JobNetworkAttackTest, NothingStartsAConnectionIntoTheJob) {
  SandboxSpec s = spec("server");
  s.net_class = class_;
  auto server = start(s, net_job_.get());
  ASSERT_TRUE(server);
  Ran served;
  bool done = false;
  launch(*server, "exec python3 -c 'import socket; s=socket.socket(); s.bind((\"0.0.0.0\", 8080)); s.listen(8); "
                  "import time; time.sleep(60)'", served, done);
  // Control: the job's own loopback reaches it (how previews and ready checks come in).
  bool listening = false;
  for (int i = 0; i < 250 && !listening; ++i) {
    run_for(std::chrono::milliseconds(20));
    listening = server->connect_tcp(8080).ok();
  }
  ASSERT_TRUE(listening) << served.out << served.err;
  Ran from_machine = on_host("timeout 1 bash -c 'exec 3<>/dev/tcp/" + network_->address_v4() +
                             "/8080' && echo connected || echo refused");
  EXPECT_NE(from_machine.out.find("refused"), std::string::npos) << from_machine.out;
  EXPECT_EQ(from_machine.out.find("connected"), std::string::npos) << from_machine.out;
  server->stop(Outcome::Kind::cancelled, Millis(0));
  wait_for(done);
}

TEST_P(JobNetworkAttackTest, AStepCannotChangeItsJobsNetworkOrRules) {
  Ran r = on_job_network(
      "nft flush ruleset && echo flushed; ip link set eth0 down && echo down; "
      "ip addr add 10.213.255.1/30 dev eth0 && echo added; "
      "curl -sS -m 3 http://169.254.169.254/ || echo metadata-refused; curl -sS -m 3 http://198.51.100.10/");
  EXPECT_EQ(r.out.find("flushed"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find("down"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("added"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("metadata-refused"), std::string::npos) << r.out;  // the rules still hold...
  EXPECT_NE(r.out.find("stand-in 198.51.100.10"), std::string::npos) << r.out;  // ...and the link is up
}

INSTANTIATE_TEST_SUITE_P(Executors, JobNetworkAttackTest, ::testing::Values("native", "oci"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace boxcar::executors
