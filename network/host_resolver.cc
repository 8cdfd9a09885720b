#include "network/host_resolver.h"

#include <ares.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "base/unique_fd.h"

namespace boxcar::network {
namespace {

using Clock = std::chrono::steady_clock;
using Done = std::function<void(Result<HostAnswer>)>;

struct Request {
  std::string name;
  int family = AF_INET;
  Clock::time_point deadline;
  Done done;
};

HostAnswer answer_of(const ares_addrinfo* ai) {
  HostAnswer a;
  bool first = true;
  for (const ares_addrinfo_node* n = ai ? ai->nodes : nullptr; n; n = n->ai_next) {
    boost::asio::ip::address addr;
    if (n->ai_family == AF_INET && n->ai_addrlen >= sizeof(sockaddr_in)) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(n->ai_addr);
      addr = boost::asio::ip::address_v4(ntohl(sin->sin_addr.s_addr));
    } else if (n->ai_family == AF_INET6 && n->ai_addrlen >= sizeof(sockaddr_in6)) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(n->ai_addr);
      boost::asio::ip::address_v6::bytes_type bytes;
      std::memcpy(bytes.data(), sin6->sin6_addr.s6_addr, bytes.size());
      addr = boost::asio::ip::address_v6(bytes);
    } else {
      continue;
    }
    const auto ttl = static_cast<uint32_t>(std::max(n->ai_ttl, 0));
    a.ttl_seconds = first ? ttl : std::min(a.ttl_seconds, ttl);
    first = false;
    if (std::find(a.addresses.begin(), a.addresses.end(), addr) == a.addresses.end()) a.addresses.push_back(addr);
  }
  return a;
}

class CaresResolver final : public HostResolver {
 public:
  CaresResolver(ares_channel channel, unique_fd wake) : channel_(channel), wake_(std::move(wake)) {
    thread_ = std::thread([this] { run(); });
  }

  ~CaresResolver() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake();
    thread_.join();
  }

  void resolve(std::string name, int family, Millis timeout, Done done) override {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(Request{std::move(name), family, Clock::now() + timeout, std::move(done)});
    }
    wake();
  }

 private:
  // What c-ares carries to its callback: the request is found again by id, so a request that
  // already timed out (and was answered) is not answered twice.
  struct Tag {
    CaresResolver* self;
    uint64_t id;
  };

  void wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
  }

  void finish(uint64_t id, Result<HostAnswer> r) {
    auto it = active_.find(id);
    if (it == active_.end()) return;
    Done done = std::move(it->second.done);
    active_.erase(it);
    done(std::move(r));
  }

  static void on_answer(void* arg, int status, int /*timeouts*/, ares_addrinfo* ai) {
    std::unique_ptr<Tag> tag(static_cast<Tag*>(arg));
    HostAnswer a;
    if (status == ARES_SUCCESS) {
      a = answer_of(ai);
    } else if (status == ARES_ENOTFOUND) {
      a.nxdomain = true;
    } else if (status != ARES_ENODATA) {
      tag->self->finish(tag->id, Error(std::string("host resolution failed: ") + ares_strerror(status), 0,
                                       ErrorCode::unavailable));
      if (ai) ares_freeaddrinfo(ai);
      return;
    }
    if (ai) ares_freeaddrinfo(ai);
    tag->self->finish(tag->id, std::move(a));
  }

  void start(Request r) {
    const uint64_t id = next_id_++;
    ares_addrinfo_hints hints{};
    hints.ai_family = r.family;
    hints.ai_flags = ARES_AI_NOSORT;  // sorting would connect() to every address to rank it
    const std::string name = r.name;
    active_.emplace(id, std::move(r));
    // May call on_answer before it returns (a name of /etc/hosts): the request is in active_.
    ares_getaddrinfo(channel_, name.c_str(), nullptr, &hints, on_answer, new Tag{this, id});
  }

  void expire(Clock::time_point now) {
    std::vector<uint64_t> late;
    for (const auto& [id, r] : active_)
      if (r.deadline <= now) late.push_back(id);
    for (uint64_t id : late)
      finish(id, Error("host resolution timed out", ETIMEDOUT, ErrorCode::unavailable));
  }

  int poll_timeout_ms(Clock::time_point now) {
    timeval max{60, 0}, tv{};
    const timeval* t = ares_timeout(channel_, &max, &tv);
    auto ms = static_cast<long long>(t->tv_sec) * 1000 + (t->tv_usec + 999) / 1000;
    for (const auto& [id, r] : active_) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(r.deadline - now).count();
      ms = std::min<long long>(ms, std::max<long long>(left, 0));
    }
    return static_cast<int>(ms);
  }

  void run() {
    for (;;) {
      std::deque<Request> fresh;
      {
        std::lock_guard lock(mu_);
        if (stopping_) break;
        fresh.swap(queue_);
      }
      for (auto& r : fresh) start(std::move(r));
      expire(Clock::now());

      ares_socket_t socks[ARES_GETSOCK_MAXNUM];
      const int bits = ares_getsock(channel_, socks, ARES_GETSOCK_MAXNUM);
      std::vector<pollfd> fds{{wake_.get(), POLLIN, 0}};
      for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
        short events = 0;
        if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
        if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
        if (events) fds.push_back({socks[i], events, 0});
      }
      const int n = ::poll(fds.data(), fds.size(), poll_timeout_ms(Clock::now()));
      if (n < 0 && errno != EINTR) break;
      if (fds[0].revents & POLLIN) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = ::read(wake_.get(), &count, sizeof count);
      }
      bool any = false;
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        any = true;
        const bool rd = fds[i].revents & (POLLIN | POLLERR | POLLHUP);
        const bool wr = fds[i].revents & POLLOUT;
        ares_process_fd(channel_, rd ? fds[i].fd : ARES_SOCKET_BAD, wr ? fds[i].fd : ARES_SOCKET_BAD);
      }
      if (!any) ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // c-ares's own timeouts
    }
    // Every request gets its answer once: c-ares calls back what it holds with ARES_EDESTRUCTION.
    ares_destroy(channel_);
    std::deque<Request> left;
    {
      std::lock_guard lock(mu_);
      left.swap(queue_);
    }
    for (auto& r : left) active_.emplace(next_id_++, std::move(r));
    while (!active_.empty())
      finish(active_.begin()->first, Error("host resolver shut down", 0, ErrorCode::unavailable));
  }

  ares_channel channel_;
  unique_fd wake_;
  std::mutex mu_;
  std::deque<Request> queue_;  // under mu_
  bool stopping_ = false;      // under mu_
  // The resolver thread's alone:
  std::map<uint64_t, Request> active_;
  uint64_t next_id_ = 1;
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<HostResolver>> HostResolver::make(std::string servers) {
  static const int library = ares_library_init(ARES_LIB_INIT_ALL);
  if (library != ARES_SUCCESS) return Error(std::string("c-ares: ") + ares_strerror(library), 0, ErrorCode::unavailable);
  unique_fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return Error("eventfd for the host resolver", errno, ErrorCode::unavailable);
  ares_options opts{};
  opts.ndomains = 0;  // no search domains, whatever resolv.conf says
  opts.domains = nullptr;
  ares_channel channel = nullptr;
  if (int rc = ares_init_options(&channel, &opts, ARES_OPT_DOMAINS); rc != ARES_SUCCESS)
    return Error(std::string("c-ares could not read the machine's resolver configuration: ") + ares_strerror(rc), 0,
                 ErrorCode::unavailable);
  if (!servers.empty()) {
    if (int rc = ares_set_servers_ports_csv(channel, servers.c_str()); rc != ARES_SUCCESS) {
      ares_destroy(channel);
      return Error("DNS servers \"" + servers + "\": " + ares_strerror(rc), 0, ErrorCode::invalid_input);
    }
  }
  return std::unique_ptr<HostResolver>(new CaresResolver(channel, std::move(wake)));
}

}  // namespace boxcar::network
