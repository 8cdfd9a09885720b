#include "network/nft.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>

#include <nftables/libnftables.h>

#include <boost/json.hpp>

namespace boxcar::network {

namespace json = boost::json;

namespace {

// libnftables 1.0 (Debian 12) waits for netlink answers with select(), and glibc aborts the whole
// process for a descriptor at or past FD_SETSIZE (1024). An agent holding many sandboxes and jobs
// gets there (each holds ~9 descriptors), so a context whose socket lands that high moves it to
// one of a few low numbers reserved at the first open (early in the process's life): they hold
// /dev/null until a context borrows one, and dup3 swaps either way atomically, so no other
// thread can take the number in between. Contexts live for one job-network operation, so a few
// numbers serve any count of job networks; a context waits for a number when all are lent.
class LowNumbers {
 public:
  static LowNumbers& get() {
    static LowNumbers numbers;
    return numbers;
  }
  // A reserved number (waits while all are lent), or -1 when none could be reserved.
  int borrow() {
    std::unique_lock lock(mu_);
    if (all_.empty()) return -1;
    free_cv_.wait(lock, [&] { return !free_.empty(); });
    int n = free_.back();
    free_.pop_back();
    return n;
  }
  // Closes what `n` holds (the socket) by putting /dev/null back in its place.
  void give_back(int n) {
    ::dup3(null_, n, O_CLOEXEC);
    std::lock_guard lock(mu_);
    free_.push_back(n);
    free_cv_.notify_one();
  }

 private:
  static constexpr int kCount = 8;
  LowNumbers() {
    null_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    for (int i = 0; null_ >= 0 && i < kCount; ++i) {
      int n = ::fcntl(null_, F_DUPFD_CLOEXEC, 0);
      if (n < 0 || n >= FD_SETSIZE) {
        if (n >= 0) ::close(n);
        break;
      }
      all_.push_back(n);
    }
    free_ = all_;
  }
  int null_ = -1;
  std::vector<int> all_;
  std::vector<int> free_;
  std::mutex mu_;
  std::condition_variable free_cv_;
};

// The context's netlink socket. libnftables has no accessor for it: struct nft_ctx (1.0.x,
// include/nftables.h) starts with its `struct mnl_socket *nf_sock`, and libmnl's struct
// mnl_socket starts with its `int fd`. The layout is checked against the kernel: the number must
// be a NETLINK_NETFILTER socket, else nullptr (and the context is used as it is).
int* socket_number(nft_ctx* c) {
  auto* sock = *reinterpret_cast<int**>(c);
  if (sock == nullptr) return nullptr;
  int fd = *sock;
  int domain = 0, protocol = 0;
  socklen_t len = sizeof domain;
  if (fd < 0 || ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_NETLINK) return nullptr;
  len = sizeof protocol;
  if (::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0 || protocol != NETLINK_NETFILTER) return nullptr;
  return sock;
}

}  // namespace

void Nft::Free::operator()(nft_ctx* c) const {
  if (low >= 0) {
    // give_back closes the socket; libnftables then closes -1 (EBADF) instead of a number
    // another thread may have been given meanwhile.
    if (int* fd = socket_number(c)) *fd = -1;
    LowNumbers::get().give_back(low);
  }
  nft_ctx_free(c);
}

Result<Nft> Nft::open() {
  LowNumbers& numbers = LowNumbers::get();  // reserved at the first open, while numbers are low
  nft_ctx* c = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!c) return Error{"nftables: cannot open a netlink socket (is nf_tables in the kernel?)", 0, ErrorCode::unavailable};
  nft_ctx_buffer_output(c);
  nft_ctx_buffer_error(c);
  int* fd = socket_number(c);
  if (fd == nullptr || *fd < FD_SETSIZE) return Nft(c, -1);
  int low = numbers.borrow();
  if (low < 0) {
    nft_ctx_free(c);
    return Error{"nftables: this process holds " + std::to_string(FD_SETSIZE) +
                     "+ descriptors, and libnftables cannot use one numbered past that (no low number could be "
                     "reserved): fewer jobs or sandboxes at once on this agent (--sandbox-slots, --concurrency)",
                 0, ErrorCode::unavailable};
  }
  ::dup3(*fd, low, O_CLOEXEC);
  ::close(*fd);
  *fd = low;
  return Nft(c, low);
}

Status Nft::run(std::string_view script) {
  nft_ctx_output_set_flags(ctx_.get(), 0);
  std::string buf(script);
  if (nft_run_cmd_from_buffer(ctx_.get(), buf.c_str()) != 0) {
    std::string err = nft_ctx_get_error_buffer(ctx_.get());
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return Error{"nftables: " + err, 0, ErrorCode::unavailable};
  }
  return {};
}

Result<std::string> Nft::json(std::string_view command) {
  nft_ctx_output_set_flags(ctx_.get(), NFT_CTX_OUTPUT_JSON);
  std::string buf(command);
  int rc = nft_run_cmd_from_buffer(ctx_.get(), buf.c_str());
  nft_ctx_output_set_flags(ctx_.get(), 0);
  if (rc != 0) return Error{std::string("nftables: ") + nft_ctx_get_error_buffer(ctx_.get()), 0, ErrorCode::unavailable};
  return std::string(nft_ctx_get_output_buffer(ctx_.get()));
}

namespace {

uint64_t number(const json::value& v) {
  if (v.is_int64()) return static_cast<uint64_t>(v.as_int64());
  if (v.is_uint64()) return v.as_uint64();
  return 0;
}

// l4proto prints as a name for known protocols and as a number for the others.
std::string protocol_text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return std::to_string(number(v));
}

}  // namespace

Result<std::vector<CountedElement>> Nft::counted_elements(std::string_view table, std::string_view set) {
  auto text = json("list set inet " + std::string(table) + " " + std::string(set));
  if (!text) return text.error();
  std::vector<CountedElement> out;
  try {
    json::value doc = json::parse(*text);
    for (const auto& item : doc.at("nftables").as_array()) {
      const auto* s = item.as_object().if_contains("set");
      if (!s) continue;
      const auto* elems = s->as_object().if_contains("elem");
      if (!elems) continue;
      for (const auto& e : elems->as_array()) {
        const auto& inner = e.as_object().at("elem").as_object();
        const auto& concat = inner.at("val").as_object().at("concat").as_array();
        if (concat.size() < 3) continue;
        CountedElement c;
        c.net_class = static_cast<uint32_t>(number(concat[0]));
        c.protocol = protocol_text(concat[1]);
        c.address = std::string(concat[2].as_string());
        if (concat.size() > 3) c.port = static_cast<uint16_t>(number(concat[3]));
        if (const auto* counter = inner.if_contains("counter")) c.packets = number(counter->as_object().at("packets"));
        out.push_back(std::move(c));
      }
    }
  } catch (const std::exception& e) {
    return Error{std::string("nftables: unexpected JSON for set ") + std::string(set) + ": " + e.what()};
  }
  return out;
}

Result<uint64_t> Nft::counter_packets(std::string_view table, std::string_view counter) {
  auto text = json("list counter inet " + std::string(table) + " " + std::string(counter));
  if (!text) return text.error();
  try {
    json::value doc = json::parse(*text);  // named: a range-for over a temporary's member dangles
    for (const auto& item : doc.at("nftables").as_array())
      if (const auto* c = item.as_object().if_contains("counter")) return number(c->as_object().at("packets"));
  } catch (const std::exception& e) {
    return Error{std::string("nftables: unexpected JSON for counter ") + std::string(counter) + ": " + e.what()};
  }
  return uint64_t{0};
}

Result<std::vector<std::string>> Nft::inet_tables() {
  auto text = json("list tables inet");
  if (!text) return text.error();
  std::vector<std::string> out;
  try {
    json::value doc = json::parse(*text);
    for (const auto& item : doc.at("nftables").as_array())
      if (const auto* t = item.as_object().if_contains("table"))
        out.emplace_back(t->as_object().at("name").as_string());
  } catch (const std::exception& e) {
    return Error{std::string("nftables: unexpected JSON for the tables: ") + e.what()};
  }
  return out;
}

}  // namespace boxcar::network
