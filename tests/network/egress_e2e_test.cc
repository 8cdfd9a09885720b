// Job networks through the real `boxcar run`: the internet is reachable from a step, the agent
// machine's own address, private ranges and the metadata address are not, names resolve through
// the machine's resolution, a step's egress list lets only its names through, network = "none"
// reaches nothing, the operator's flags widen and narrow it, and nothing of a job's network is
// left after it ends or after its process is SIGKILLed. Each refusal beside a control that
// reaches something through the same path.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fcntl.h>

#include <fstream>

#include "base/unique_fd.h"
#include "network/job_rules.h"
#include "testing/job_network_slot.h"
#include "testing/private_hosts_file.h"
#include "testing/stand_in_internet.h"
#include "tests/cli/boxcar_process.h"

namespace boxcar::testing {
namespace {

// The names the steps look up, through the private /etc/hosts of this test process (and of the
// boxcar processes it starts, which share its mount namespace).
constexpr const char* kHosts =
    "127.0.0.1 localhost\n"
    "198.51.100.10 web.stand-in.test\n"
    "203.0.113.10 other.stand-in.test\n"
    "169.254.169.254 metadata.stand-in.test\n"
    "10.9.9.9 private.stand-in.test\n";

// The machine's first IPv4 address that is not loopback: "the agent machine's own address".
std::string machine_address() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return {};
  std::string found;
  for (ifaddrs* a = list; a && found.empty(); a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || (a->ifa_flags & IFF_LOOPBACK)) continue;
    std::string name = a->ifa_name;
    if (name.starts_with("bx")) continue;  // a job's or the stand-in internet's veth
    char buf[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
    found = buf;
  }
  ::freeifaddrs(list);
  return found;
}

// A TCP listener on every address of the machine: what a service of the agent machine looks like.
struct MachineService {
  unique_fd fd;
  int port = 0;
  MachineService() {
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    socklen_t len = sizeof a;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd.get(), 16) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port = ntohs(a.sin_port);
  }
  // The control: the machine itself reaches the service at that address.
  bool reachable_from_host(const std::string& address) const {
    unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    return ::connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
};

std::string run_command(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

std::string link_ifindex(const std::string& name) {
  std::ifstream in("/sys/class/net/" + name + "/ifindex");
  std::string s;
  std::getline(in, s);
  return s;
}

// The handle of table inet `name` ("596"), or "" when there is none: a table made again gets a
// new one.
std::string table_handle(const std::string& name) {
  std::string out = run_command("nft -a list table inet " + name + " 2>/dev/null");
  std::string key = "table inet " + name + " { # handle ";
  if (!out.starts_with(key)) return {};
  return out.substr(key.size(), out.find('\n') - key.size());
}

class EgressE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    auto hosts = set_private_hosts(kHosts);
    ASSERT_TRUE(hosts.ok()) << hosts.error().message;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "job networks need root";
    if (std::string why = executor_unavailable("native"); !why.empty()) GTEST_SKIP() << why;
    auto internet = StandInInternet::make();
    ASSERT_TRUE(internet.ok()) << internet.error().message;
    internet_ = std::move(*internet);
  }

  ProcessResult run(const std::string& pipeline, std::vector<std::string> flags = {}) {
    dir_.write(".boxcar.toml", pipeline);
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), flags.begin(), flags.end());
    return run_boxcar(args, dir_.path());
  }

  std::unique_ptr<StandInInternet> internet_;
  TempDir dir_;
};

TEST_F(EgressE2eTest, PublicReachesTheInternetByNameButNotTheMachinePrivateRangesOrMetadata) {
  MachineService service;
  std::string machine = machine_address();
  ASSERT_FALSE(machine.empty());
  ASSERT_TRUE(service.reachable_from_host(machine));  // control: the service answers there
  std::string target = machine + ":" + std::to_string(service.port);
  auto r = run(R"(version = 1
[[step]]
name = "public"
run = """
cat /etc/resolv.conf
curl -sS -m 5 http://web.stand-in.test/; echo
curl -sS -m 5 http://203.0.113.10/; echo
if grep -q '^nameserver .*:' /etc/resolv.conf; then curl -sS -m 5 -g 'http://[2001:db8:100::10]/'; echo; fi
curl -sS -m 5 http://metadata.stand-in.test/ || echo metadata-refused
curl -sS -m 5 http://private.stand-in.test/ || echo private-refused
curl -sS -m 5 http://)" + target + R"(/ || echo machine-refused
"""

[[step]]
name = "offline"
network = "none"
run = """
curl -sS -m 5 http://198.51.100.10/ || echo none-refused
getent hosts web.stand-in.test || echo none-no-dns
cat /etc/resolv.conf
"""
)");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[public] nameserver 10.213."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[public] stand-in 198.51.100.10"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[public] stand-in 203.0.113.10"), std::string::npos) << r.out;
  // IPv6 out through the machine's NAT, where the machine has an IPv6 default route (jobs get
  // IPv6 then, and their resolv.conf names the gateway's IPv6 address too).
  if (r.out.find("[public] nameserver fd62:") != std::string::npos) {
    EXPECT_NE(r.out.find("[public] stand-in 2001:db8:100::10"), std::string::npos) << r.out;
  }
  EXPECT_NE(r.out.find("[public] metadata-refused"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[public] private-refused"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[public] machine-refused"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("169.254.169.254:80 (metadata.stand-in.test: link-local address (cloud metadata))"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("10.9.9.9:80 (private.stand-in.test: private address (RFC 1918))"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(target + " (the agent machine's own address)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[offline] none-refused"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[offline] none-no-dns"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[offline] # boxcar: this step has network = \"none\""), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("[offline] boxcar: egress refused"), std::string::npos) << r.out;  // not on the job network
}

// `open` (no list) runs first and resolves other.stand-in.test; `listed` then may not reach that
// name, nor its address given raw.
TEST_F(EgressE2eTest, AnEgressListLetsThroughOnlyItsNames) {
  auto r = run(R"(version = 1
[[step]]
name = "listed"
needs = ["open"]
egress = ["web.stand-in.test"]
run = """
curl -sS -m 5 http://web.stand-in.test/; echo
curl -sS -m 5 http://other.stand-in.test/ || echo other-refused
curl -sS -m 5 http://203.0.113.10/ || echo raw-refused
"""

[[step]]
name = "open"
run = "curl -sS -m 5 http://other.stand-in.test/; echo"
)");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[listed] stand-in 198.51.100.10"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[listed] other-refused"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[listed] raw-refused"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[listed] boxcar: egress refused: 1 connection to 203.0.113.10:80 (other.stand-in.test: "
                       "not in this step's egress list); lookups of other.stand-in.test (not in any step's egress "
                       "list)\n"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[open] stand-in 203.0.113.10"), std::string::npos) << r.out;  // control
}

TEST_F(EgressE2eTest, ANameNoStepMayReachIsNotResolvedAndTheLogSaysSo) {
  auto r = run(R"(version = 1
[[step]]
name = "listed"
egress = ["web.stand-in.test"]
run = """
getent hosts web.stand-in.test
getent hosts other.stand-in.test || echo other-not-resolved
"""
)");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("198.51.100.10"), std::string::npos) << r.out;  // control
  EXPECT_NE(r.out.find("[listed] other-not-resolved"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lookups of other.stand-in.test"), std::string::npos) << r.out;
}

TEST_F(EgressE2eTest, TheOperatorsFlagsNarrowAndWidenThePolicy) {
  const std::string probe = R"(version = 1
[[step]]
name = "probe"
run = """
curl -sS -m 5 http://web.stand-in.test/ || echo web-refused
curl -sS -m 5 http://169.254.169.254/ || echo metadata-refused
echo
"""
)";
  auto none = run(probe, {"--egress", "none"});
  EXPECT_EQ(none.exit_code, 0) << none.out << none.err;
  EXPECT_NE(none.out.find("web-refused"), std::string::npos) << none.out;
  EXPECT_NE(none.out.find("metadata-refused"), std::string::npos) << none.out;

  auto allowed = run(probe, {"--egress-allow", "169.254.169.254:80"});
  EXPECT_NE(allowed.out.find("stand-in 198.51.100.10"), std::string::npos) << allowed.out;
  EXPECT_NE(allowed.out.find("stand-in 169.254.169.254"), std::string::npos) << allowed.out;

  auto all = run(probe, {"--egress", "all"});
  EXPECT_NE(all.out.find("stand-in 198.51.100.10"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("stand-in 169.254.169.254"), std::string::npos) << all.out;

  auto bad = run(probe, {"--egress-allow", "example.com"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--egress-allow \"example.com\""), std::string::npos) << bad.err;
}

// A `boxcar run` whose process is SIGKILLed mid-step leaves its table and veth; the next boxcar
// process on the machine removes them. A run that ends leaves nothing of its own.
TEST_F(EgressE2eTest, NothingRemainsAfterAJobOrAfterItsProcessIsKilled) {
  dir_.write(".boxcar.toml", R"(version = 1
[[step]]
name = "held"
run = "hostname -I; echo holding; sleep 60"
)");
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    if (::chdir(dir_.path().c_str()) != 0) ::_exit(127);
    ::execl(BOXCAR_BINARY, BOXCAR_BINARY, "run", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string printed;
  char buf[4096];
  while (printed.find("holding") == std::string::npos) {
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    printed.append(buf, static_cast<size_t>(n));
  }
  size_t at = printed.find("[held] 10.213.");
  ASSERT_NE(at, std::string::npos) << printed;
  std::string address = printed.substr(at + 7, printed.find_first_of(" \n", at + 7) - at - 7);
  int slot = job_network_slot(address);
  ASSERT_GE(slot, 0) << printed;
  std::string link = network::host_link_name(slot), table = network::host_table_name(slot);
  std::string ifindex = link_ifindex(link), handle = table_handle(table);
  ASSERT_FALSE(ifindex.empty()) << link;  // control: the probe sees a live job's network
  ASSERT_FALSE(handle.empty()) << table;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(out[0]);
  // The host's table is left behind by the killed process. Its link may or may not be: the
  // link's other end is in the job's namespace, which the kernel takes down on a work queue of
  // its own once the job's processes are gone, so whether it is still there now is a race (a
  // loaded CI machine lost it).
  EXPECT_EQ(table_handle(table), handle);

  auto next = run("version = 1\n[[step]]\nname = \"next\"\nrun = \"hostname -I\"\n");
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  // Gone, or another job's by now: a new link and a new table have new numbers. (That a job
  // that ends removes its own is network_test's JobNetworkTest.NothingRemains...)
  EXPECT_NE(link_ifindex(link), ifindex);
  EXPECT_NE(table_handle(table), handle);
}

}  // namespace
}  // namespace boxcar::testing
