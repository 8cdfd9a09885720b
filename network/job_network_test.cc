// Job networks against the real kernel: namespaces, veths, nftables, net_cls classes. A probe is
// a forked process placed in a net_cls cgroup of the step's class (a private net_cls mount of the
// test's own) and in the job's namespace, connecting to a destination with a deadline.
#include "network/job_network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "network/dns_server.h"
#include "network/host_setup.h"
#include "network/job_rules.h"
#include "network/nft.h"
#include "testing/job_network_slot.h"
#include "testing/stand_in_internet.h"

namespace boxcar::network {
namespace {

namespace fs = std::filesystem;
using testing::StandInInternet;

// A private mount of the net_cls hierarchy, so the test needs nothing of the executors.
class NetCls {
 public:
  NetCls() {
    char tmpl[] = "/tmp/boxcar-netcls-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    ok_ = ::mount("net_cls", root_.c_str(), "cgroup", 0, "net_cls") == 0;
  }
  ~NetCls() {
    for (const auto& d : dirs_) ::rmdir(d.c_str());
    ::umount2(root_.c_str(), MNT_DETACH);
    ::rmdir(root_.c_str());
  }
  bool ok() const { return ok_; }
  // A cgroup of the class; its procs file.
  std::string group(uint32_t net_class) {
    fs::path d = root_ / ("boxcar-test-" + std::to_string(::getpid()) + "-" + std::to_string(net_class));
    if (::mkdir(d.c_str(), 0755) == 0) dirs_.push_back(d);
    std::ofstream(d / "net_cls.classid") << net_class;
    return (d / "cgroup.procs").string();
  }

 private:
  fs::path root_;
  std::vector<fs::path> dirs_;
  bool ok_ = false;
};

// What a connection attempt from inside the job got: the reply body, "refused" or "no answer".
std::string probe(int netns, const std::string& procs, const std::string& address, uint16_t port, int timeout_ms = 3000) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    auto say = [&](const char* s) { (void)!::write(p[1], s, std::strlen(s)); ::_exit(0); };
    int fd = ::open(procs.c_str(), O_WRONLY);
    if (fd < 0 || ::write(fd, "0", 1) != 1) say("cgroup failed");
    ::close(fd);
    if (::setns(netns, CLONE_NEWNET) != 0) say("setns failed");
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    ::inet_pton(AF_INET, address.c_str(), &to.sin_addr);
    if (::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS) say("refused");
    pollfd pf{s, POLLOUT, 0};
    if (::poll(&pf, 1, timeout_ms) != 1) say("no answer");
    int e = 0;
    socklen_t len = sizeof e;
    ::getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len);
    if (e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EACCES) say("refused");
    if (e != 0) say("no answer");
    const char req[] = "GET / HTTP/1.0\r\n\r\n";
    (void)!::write(s, req, sizeof req - 1);
    std::string reply;
    char buf[512];
    for (;;) {
      pollfd rf{s, POLLIN, 0};
      if (::poll(&rf, 1, timeout_ms) != 1) break;
      ssize_t n = ::read(s, buf, sizeof buf);
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
    auto body = reply.find("\r\n\r\n");
    say(body == std::string::npos ? "no answer" : reply.c_str() + body + 4);
  }
  ::close(p[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  ::waitpid(pid, nullptr, 0);
  return out;
}

// A listener on the machine's own (non-loopback) IPv4 address, the way a database on the agent
// machine would be.
struct MachineServer {
  MachineServer() {
    std::vector<std::string> v4, v6;
    machine_addresses(v4, v6);
    for (const auto& a : v4)
      if (!a.starts_with("127.") && !a.starts_with("10.213.") && !a.starts_with("198.18.")) address = a;
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in at{};
    at.sin_family = AF_INET;
    ::inet_pton(AF_INET, address.c_str(), &at.sin_addr);
    socklen_t len = sizeof at;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&at), len) == 0 && ::listen(fd.get(), 8) == 0) {
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&at), &len);
      port = ntohs(at.sin_port);
    }
  }
  std::string address;
  uint16_t port = 0;
  unique_fd fd;
};

bool table_exists(const std::string& name) {
  auto nft = Nft::open();
  auto tables = nft->inet_tables();
  return tables && std::find(tables->begin(), tables->end(), name) != tables->end();
}

// Fills the descriptor table until a newly opened one is numbered at or past FD_SETSIZE (1024),
// raising the soft limit as serve does; the fill is undone on destruction.
struct PastTheSelectLimit {
  PastTheSelectLimit() {
    ::getrlimit(RLIMIT_NOFILE, &old);
    struct rlimit raised = old;
    raised.rlim_cur = std::max<rlim_t>(old.rlim_cur, 2048);
    ok = old.rlim_max >= 2048 && ::setrlimit(RLIMIT_NOFILE, &raised) == 0;
    while (ok) {
      unique_fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      if (!fd) break;
      highest = fd.get();
      filler.push_back(std::move(fd));
      if (highest >= FD_SETSIZE + 64) break;
    }
  }
  ~PastTheSelectLimit() {
    filler.clear();
    ::setrlimit(RLIMIT_NOFILE, &old);
  }
  struct rlimit old {};
  bool ok = false;
  int highest = -1;
  std::vector<unique_fd> filler;
};

// libnftables select()s on its netlink socket, and glibc aborts the process for a descriptor
// numbered 1024 or more: Nft::open moves a socket that lands there to a reserved low number.
TEST(NftDescriptors, OpeningPastTheSelectLimitWorks) {
  ASSERT_TRUE(Nft::open().ok());  // the low numbers are reserved by the first open
  PastTheSelectLimit full;
  if (!full.ok) GTEST_SKIP() << "the hard open-file limit is under 2048";
  // Control: the next descriptor really is past the limit, where select() would abort.
  unique_fd probe(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_GE(probe.get(), FD_SETSIZE);
  for (int i = 0; i < 20; ++i) {  // more than the reserved numbers: each is given back
    auto nft = Nft::open();
    ASSERT_TRUE(nft.ok()) << nft.error().message;
    auto tables = nft->inet_tables();
    ASSERT_TRUE(tables.ok()) << tables.error().message;
    // A transaction: libnftables waits for its answer with select() on the socket.
    auto ran = nft->run("add table inet boxcar_fd_probe\ndelete table inet boxcar_fd_probe\n");
    ASSERT_TRUE(ran.ok()) << ran.error().message;
  }
}

class JobNetworkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto net = StandInInternet::make();
    ASSERT_TRUE(net) << net.error().message;
    internet_ = std::move(*net).release();
  }
  static void TearDownTestSuite() {
    delete internet_;
    internet_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(netcls_.ok()) << "mounting net_cls: " << std::strerror(errno); }

  std::unique_ptr<NetworkHost> host(EgressPolicy policy, size_t max_refused = 4096) {
    NetworkOptions o;
    o.policy = std::move(policy);
    o.max_refused_destinations = max_refused;
    auto h = NetworkHost::make(io_, o);
    EXPECT_TRUE(h) << h.error().message;
    return h ? std::move(*h) : nullptr;
  }

  static inline StandInInternet* internet_ = nullptr;
  boost::asio::io_context io_;
  NetCls netcls_;
};

const RefusedDestination* find(const EgressReport& r, const std::string& address) {
  for (const auto& d : r.refused)
    if (d.address == address) return &d;
  return nullptr;
}

TEST_F(JobNetworkTest, PublicReachesTheInternetButNotTheMachinePrivateRangesOrMetadata) {
  MachineServer machine;
  ASSERT_NE(machine.port, 0) << "no listener on the machine's address " << machine.address;
  auto h = host({});
  auto job = h->create_job("j1");
  ASSERT_TRUE(job) << job.error().message;
  auto cls = (*job)->add_step("build", std::nullopt);
  ASSERT_TRUE(cls);
  auto procs = netcls_.group(*cls);
  int ns = (*job)->netns_fd();

  EXPECT_EQ(probe(ns, procs, StandInInternet::kWebA, 80), StandInInternet::body_of(StandInInternet::kWebA));
  EXPECT_EQ(probe(ns, procs, machine.address, machine.port), "refused");
  EXPECT_EQ(probe(ns, procs, "10.1.2.3", 80), "refused");
  EXPECT_EQ(probe(ns, procs, StandInInternet::kMetadata, 80), "refused");
  EXPECT_EQ(probe(ns, procs, StandInInternet::kMetadata, 80), "refused");

  auto r = (*job)->report(*cls);
  ASSERT_EQ(r.refused.size(), 3u) << describe(r);
  EXPECT_EQ(r.refused[0].address, StandInInternet::kMetadata);  // most refused first
  EXPECT_EQ(r.refused[0].count, 2u);
  EXPECT_EQ(r.refused[0].protocol, "tcp");
  EXPECT_EQ(r.refused[0].port, 80);
  EXPECT_EQ(r.refused[0].reason, public_refusal_reason(StandInInternet::kMetadata));
  ASSERT_TRUE(find(r, machine.address));
  EXPECT_EQ(find(r, machine.address)->reason, "the agent machine's own address");
  ASSERT_TRUE(find(r, "10.1.2.3"));
  EXPECT_EQ(find(r, "10.1.2.3")->reason, public_refusal_reason("10.1.2.3"));
  EXPECT_EQ(r.refused_total, 4u);
  EXPECT_EQ((*job)->refused_total(), 4u);
  EXPECT_NE((*job)->resolv_conf().find("nameserver 10.213."), std::string::npos);
}

// An agent holding ~1,000 sandboxes holds ~9,000 descriptors: job networks are still made, used
// and removed there (the abort the sandbox benchmark found at about 110 sandboxes).
TEST_F(JobNetworkTest, AProcessPastTheSelectLimitStillMakesJobNetworks) {
  auto h = host({});  // made first, as the agent does at start
  PastTheSelectLimit full;
  if (!full.ok) GTEST_SKIP() << "the hard open-file limit is under 2048";
  ASSERT_GE(full.highest, FD_SETSIZE);  // control: the table really is past the limit
  std::vector<std::unique_ptr<JobNetwork>> jobs;
  for (int i = 0; i < 12; ++i) {  // more jobs than reserved low numbers: none holds one
    auto job = h->create_job("many" + std::to_string(i));
    ASSERT_TRUE(job) << job.error().message;
    jobs.push_back(std::move(*job));
  }
  auto cls = jobs.back()->add_step("s", std::vector<HostPattern>{});
  ASSERT_TRUE(cls) << cls.error().message;
  auto procs = netcls_.group(*cls);
  EXPECT_EQ(probe(jobs.back()->netns_fd(), procs, StandInInternet::kWebA, 80), "refused");
  EXPECT_EQ(jobs.back()->report(*cls).refused_total, 1u);  // counters read through nftables
}

TEST_F(JobNetworkTest, AllowRulesAndModeAllWidenWhatPublicRefuses) {
  MachineServer machine;
  EgressPolicy widened;
  widened.allow.push_back(*parse_allow_rule(std::string(StandInInternet::kMetadata) + ":80"));
  auto h = host(widened);
  auto job = h->create_job("j2");
  ASSERT_TRUE(job) << job.error().message;
  auto cls = (*job)->add_step("s", std::nullopt);
  auto procs = netcls_.group(*cls);
  EXPECT_EQ(probe((*job)->netns_fd(), procs, StandInInternet::kMetadata, 80),
            StandInInternet::body_of(StandInInternet::kMetadata));
  EXPECT_EQ(probe((*job)->netns_fd(), procs, machine.address, machine.port), "refused");

  // Mode all still refuses the machine itself, unless an allow rule names it.
  auto all = host({EgressMode::all, {}});
  auto job_all = all->create_job("j3");
  ASSERT_TRUE(job_all) << job_all.error().message;
  auto cls_all = (*job_all)->add_step("s", std::nullopt);
  auto procs_all = netcls_.group(*cls_all);
  EXPECT_EQ(probe((*job_all)->netns_fd(), procs_all, machine.address, machine.port), "refused");
  EXPECT_EQ(probe((*job_all)->netns_fd(), procs_all, StandInInternet::kWebB, 80),
            StandInInternet::body_of(StandInInternet::kWebB));

  EgressPolicy machine_allowed{EgressMode::all, {*parse_allow_rule(machine.address + ":" + std::to_string(machine.port))}};
  auto opened = host(machine_allowed);
  auto job_open = opened->create_job("j4");
  ASSERT_TRUE(job_open) << job_open.error().message;
  auto cls_open = (*job_open)->add_step("s", std::nullopt);
  // The listener accepts (no reply body: it never answers), which is what reaching it means.
  EXPECT_EQ(probe((*job_open)->netns_fd(), netcls_.group(*cls_open), machine.address, machine.port, 300), "no answer");
}

TEST_F(JobNetworkTest, EgressListLetsThroughOnlyAddressesAnsweredForItsNames) {
  auto h = host({});
  auto job = h->create_job("j5");
  ASSERT_TRUE(job) << job.error().message;
  std::vector<HostPattern> list{*parse_host_pattern("web-a.test")};
  auto listed = (*job)->add_step("fetch", list);
  auto open = (*job)->add_step("other", std::nullopt);
  ASSERT_TRUE(listed && open);
  auto procs = netcls_.group(*listed);
  int ns = (*job)->netns_fd();
  auto& dns = (*job)->dns_policy();
  namespace ip = boost::asio::ip;

  EXPECT_EQ(probe(ns, procs, StandInInternet::kWebA, 80), "refused");  // not answered yet
  dns.answered("web-a.test", {ip::make_address(StandInInternet::kWebA)}, 30);
  EXPECT_EQ(probe(ns, procs, StandInInternet::kWebA, 80), StandInInternet::body_of(StandInInternet::kWebA));
  // Another name's address is not reachable, answered or not; the step without a list reaches it.
  dns.answered("web-b.test", {ip::make_address(StandInInternet::kWebB)}, 30);
  EXPECT_EQ(probe(ns, procs, StandInInternet::kWebB, 80), "refused");
  EXPECT_EQ(probe(ns, netcls_.group(*open), StandInInternet::kWebB, 80), StandInInternet::body_of(StandInInternet::kWebB));
  // A name answered with a refused range stays refused (DNS rebinding), with its reason.
  dns.answered("meta.web-a.test", {ip::make_address(StandInInternet::kMetadata)}, 30);
  dns.answered("web-a.test", {ip::make_address(StandInInternet::kMetadata)}, 30);
  EXPECT_EQ(probe(ns, procs, StandInInternet::kMetadata, 80), "refused");
  // A name:port pattern opens only that port.
  auto ported = (*job)->add_step("ported", std::vector<HostPattern>{*parse_host_pattern("*.cdn.test:80")});
  auto ported_procs = netcls_.group(*ported);
  dns.answered("img.cdn.test", {ip::make_address(StandInInternet::kWebB)}, 30);
  EXPECT_EQ(probe(ns, ported_procs, StandInInternet::kWebB, 80), StandInInternet::body_of(StandInInternet::kWebB));
  EXPECT_EQ(probe(ns, ported_procs, StandInInternet::kWebB, 81), "refused");
  EXPECT_EQ(probe(ns, ported_procs, StandInInternet::kWebA, 80), "refused");

  EXPECT_EQ(dns.refuse("web-a.test"), std::nullopt);
  EXPECT_EQ(dns.refuse("evil.test"), std::nullopt);  // the step without a list may look anything up
  (*job)->remove_step(*open);
  EXPECT_EQ(dns.refuse("evil.test"), std::optional<std::string>("not in any step's egress list"));

  auto r = (*job)->report(*listed);
  ASSERT_TRUE(find(r, StandInInternet::kMetadata));
  EXPECT_EQ(find(r, StandInInternet::kMetadata)->reason, public_refusal_reason(StandInInternet::kMetadata));
  auto* b = find(r, StandInInternet::kWebB);
  ASSERT_TRUE(b) << describe(r);
  EXPECT_EQ(b->name, "web-b.test");
  EXPECT_EQ(b->reason, "not in this step's egress list");
  ASSERT_EQ(r.refused_names.size(), 1u);
  EXPECT_NE(r.refused_names[0].find("evil.test"), std::string::npos);
}

TEST_F(JobNetworkTest, TwoJobsCannotReachEachOther) {
  auto h = host({EgressMode::all, {}});  // not even with nothing refused by range
  auto a = h->create_job("ja");
  auto b = h->create_job("jb");
  ASSERT_TRUE(a && b);
  // A listener inside job a, on every address of its namespace.
  unique_fd back(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  ASSERT_EQ(::setns((*a)->netns_fd(), CLONE_NEWNET), 0);
  unique_fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_port = htons(8080);
  bool listening = ::bind(listener.get(), reinterpret_cast<sockaddr*>(&any), sizeof any) == 0 && ::listen(listener.get(), 8) == 0;
  ASSERT_EQ(::setns(back.get(), CLONE_NEWNET), 0);
  ASSERT_TRUE(listening);

  auto ca = (*a)->add_step("s", std::nullopt);
  auto cb = (*b)->add_step("s", std::nullopt);
  // Control: the listener answers inside job a (accepted, never replies).
  EXPECT_EQ(probe((*a)->netns_fd(), netcls_.group(*ca), (*a)->address_v4(), 8080, 300), "no answer");
  auto res = probe((*b)->netns_fd(), netcls_.group(*cb), (*a)->address_v4(), 8080, 1000);
  EXPECT_TRUE(res == "refused" || res == "no answer") << res;
  pollfd pf{listener.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pf, 1, 0), 1);  // the control's connection only
  unique_fd first(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK));
  EXPECT_EQ(::poll(&pf, 1, 0), 0) << "job b's connection reached job a";
}

TEST_F(JobNetworkTest, AFullRefusalSetStillRefusesAndCounts) {
  auto h = host({}, 2);
  auto job = h->create_job("j6");
  ASSERT_TRUE(job) << job.error().message;
  auto cls = (*job)->add_step("s", std::nullopt);
  auto procs = netcls_.group(*cls);
  for (const char* a : {"10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"})
    EXPECT_EQ(probe((*job)->netns_fd(), procs, a, 80), "refused") << a;
  EXPECT_LT((*job)->report(*cls).refused.size(), 6u);
  EXPECT_EQ((*job)->refused_total(), 6u);
  // Control: the internet is still reachable from the same step.
  EXPECT_EQ(probe((*job)->netns_fd(), procs, StandInInternet::kWebA, 80), StandInInternet::body_of(StandInInternet::kWebA));
}

TEST_F(JobNetworkTest, NothingRemainsAfterTheJobOrAfterItsProcessIsKilled) {
  auto h = host({});
  std::string slot_table;
  std::string veth;
  {
    auto job = h->create_job("j7");
    ASSERT_TRUE(job) << job.error().message;
    int slot = boxcar::testing::job_network_slot((*job)->address_v4());
    slot_table = host_table_name(slot);
    veth = host_link_name(slot);
    EXPECT_TRUE(table_exists(slot_table));
    EXPECT_NE(::if_nametoindex(veth.c_str()), 0u);
  }
  EXPECT_FALSE(table_exists(slot_table));
  // The veth goes with the job's namespace, which the kernel takes down on a work queue.
  for (int i = 0; i < 250 && ::if_nametoindex(veth.c_str()) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(::if_nametoindex(veth.c_str()), 0u);

  // A process holding a job network dies by SIGKILL: its table and veth stay until the next
  // NetworkHost::make finds the slot's lock free.
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  pid_t child = ::fork();
  if (child == 0) {
    boost::asio::io_context io;
    auto ch = NetworkHost::make(io, NetworkOptions{});
    auto job = ch ? (*ch)->create_job("doomed") : Result<std::unique_ptr<JobNetwork>>(Error{"no host"});
    std::string a = job ? (*job)->address_v4() : "";
    (void)!::write(p[1], a.data(), a.size());
    ::close(p[1]);
    ::pause();
    ::_exit(0);
  }
  ::close(p[1]);
  char buf[64] = {};
  ssize_t n = ::read(p[0], buf, sizeof buf - 1);
  ::close(p[0]);
  ASSERT_GT(n, 0) << "the child made no job network";
  int slot = boxcar::testing::job_network_slot(buf);
  std::string dead_table = host_table_name(slot), dead_veth = host_link_name(slot);
  EXPECT_TRUE(table_exists(dead_table));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_TRUE(table_exists(dead_table));  // the probe works: the leftovers are there
  EXPECT_NE(::if_nametoindex(dead_veth.c_str()), 0u);

  auto again = host({});
  EXPECT_FALSE(table_exists(dead_table));
  EXPECT_EQ(::if_nametoindex(dead_veth.c_str()), 0u);
}

TEST(JobNetworkHost, ModeNoneMakesNoNetwork) {
  boost::asio::io_context io;
  NetworkOptions o;
  o.policy.mode = EgressMode::none;
  auto h = NetworkHost::make(io, o);
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message.find("loopback only"), std::string::npos) << h.error().message;
}

}  // namespace
}  // namespace boxcar::network
