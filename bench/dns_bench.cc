// DNS answer latency of a name the machine knows (/etc/hosts: c-ares 1.18 keeps no cache, so a
// hosts name is the cheapest answer) as a step sees it through the job's DnsServer (a UDP round
// trip on loopback, the hop to the resolver's thread and back), beside the baselines measured in
// the same run: getaddrinfo(3) on the host and the HostResolver (c-ares) called directly.
// The process has its own /etc/hosts (testing/private_hosts_file), so the machine's is untouched.
#include <benchmark/benchmark.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "base/unique_fd.h"
#include "network/dns_server.h"
#include "network/host_resolver.h"
#include "testing/private_hosts_file.h"

namespace {

namespace net = boxcar::network;
constexpr const char* kName = "bench-cache.test";
constexpr uint16_t kPort = 5354;

std::string listen_address() {
  const unsigned pid = static_cast<unsigned>(::getpid());
  return "127.54." + std::to_string((pid >> 8) & 0xff) + "." + std::to_string((pid & 0xff) | 1);
}

class AllowAll : public net::DnsPolicy {
 public:
  std::optional<std::string> refuse(std::string_view) override { return std::nullopt; }
  void answered(std::string_view, const std::vector<boost::asio::ip::address>&, uint32_t) override {}
};

void BM_Getaddrinfo(benchmark::State& state) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  for (auto _ : state) {
    addrinfo* res = nullptr;
    if (::getaddrinfo(kName, nullptr, &hints, &res) != 0) return state.SkipWithError("getaddrinfo failed");
    ::freeaddrinfo(res);
  }
}
BENCHMARK(BM_Getaddrinfo)->UseRealTime();

void BM_HostResolverDirect(benchmark::State& state) {
  auto resolver = net::HostResolver::make();
  if (!resolver.ok()) return state.SkipWithError(resolver.error().message.c_str());
  for (auto _ : state) {
    std::promise<bool> done;
    (*resolver)->resolve(kName, AF_INET, boxcar::Millis(5000), [&](boxcar::Result<net::HostAnswer> a) {
      done.set_value(a.ok() && !a->addresses.empty());
    });
    if (!done.get_future().get()) return state.SkipWithError("no answer");
  }
}
BENCHMARK(BM_HostResolverDirect)->UseRealTime();

void BM_DnsServerUdp(benchmark::State& state) {
  auto resolver = net::HostResolver::make();
  if (!resolver.ok()) return state.SkipWithError(resolver.error().message.c_str());
  AllowAll policy;
  boost::asio::io_context io;
  net::DnsServerOptions o;
  o.listen = {boost::asio::ip::make_address(listen_address())};
  o.port = kPort;
  auto server = net::DnsServer::make(io, **resolver, policy, o);
  if (!server.ok()) return state.SkipWithError(server.error().message.c_str());
  auto work = boost::asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });

  // A stub resolver's A query for kName, id 1, RD.
  std::vector<uint8_t> q = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  for (std::string_view label : {std::string_view("bench-cache"), std::string_view("test")}) {
    q.push_back(static_cast<uint8_t>(label.size()));
    q.insert(q.end(), label.begin(), label.end());
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});
  boxcar::unique_fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kPort);
  ::inet_pton(AF_INET, listen_address().c_str(), &to.sin_addr);
  ::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to);
  uint8_t buf[512];
  for (auto _ : state) {
    ::send(fd.get(), q.data(), q.size(), 0);
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 12 || buf[7] != 1) {
      state.SkipWithError("no answer from the DnsServer");
      break;
    }
  }
  boost::asio::post(io, [&] { server->reset(); });
  work.reset();
  loop.join();
}
BENCHMARK(BM_DnsServerUdp)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  // Before any thread: the private /etc/hosts is per mount namespace, and threads inherit it.
  if (auto s = boxcar::testing::set_private_hosts(std::string("192.0.2.10 ") + kName + "\n"); !s) {
    fprintf(stderr, "dns_bench: %s\n", s.error().message.c_str());
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
