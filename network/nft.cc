#include "network/nft.h"

#include <fcntl.h>
#include <sys/select.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#include <boost/json.hpp>

namespace boxcar::network {

namespace json = boost::json;

void Nft::Free::operator()(nft_ctx* c) const { nft_ctx_free(c); }

Result<Nft> Nft::open() {
  // libnftables 1.0 (Debian 12) waits for netlink answers with select(), and glibc aborts the
  // whole process for a descriptor at or past FD_SETSIZE (1024): an agent holding many
  // sandboxes and jobs got there (each holds ~9 descriptors). Its socket takes the lowest free
  // number, so refuse while that is near the limit: one job or sandbox fails to set up, with the
  // reason, instead of every one of them dying with the agent. The margin covers descriptors
  // other threads open meanwhile.
  constexpr int kMargin = 64;
  int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (probe >= FD_SETSIZE - kMargin) {
    ::close(probe);
    return Error{"nftables: this process holds " + std::to_string(probe) +
                     "+ descriptors, and libnftables cannot use one numbered past " + std::to_string(FD_SETSIZE) +
                     ": fewer jobs or sandboxes at once on this agent (--sandbox-slots, --concurrency)",
                 0, ErrorCode::unavailable};
  }
  if (probe >= 0) ::close(probe);
  nft_ctx* c = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!c) return Error{"nftables: cannot open a netlink socket (is nf_tables in the kernel?)", 0, ErrorCode::unavailable};
  nft_ctx_buffer_output(c);
  nft_ctx_buffer_error(c);
  return Nft(c);
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
