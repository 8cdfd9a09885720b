#include "network/dns_message.h"

#include <algorithm>

namespace boxcar::network::dns {
namespace {

uint16_t be16(std::span<const uint8_t> b, size_t at) { return static_cast<uint16_t>(b[at] << 8 | b[at + 1]); }

void put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

void put32(std::vector<uint8_t>& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v));
}

bool host_name_byte(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// The question's name at `pos`, as labels without compression; false when it is malformed.
bool parse_name(std::span<const uint8_t> b, size_t& pos, Query& q) {
  size_t wire = 0;
  bool host = true;
  for (;;) {
    if (pos >= b.size()) return false;
    const uint8_t len = b[pos++];
    ++wire;
    // 11: a compression pointer (a query's only name is the first, so it never needs one, and
    // not following them means no loop to bound); 01 and 10: label types nobody uses.
    if (len & 0xC0) return false;
    if (len == 0) break;
    wire += len;
    if (wire > max_name_wire || len > b.size() - pos) return false;
    if (!q.name.empty()) q.name += '.';
    for (size_t i = 0; i < len; ++i) {
      uint8_t c = b[pos + i];
      if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c - 'A' + 'a');
      host = host && host_name_byte(c);
      q.name += static_cast<char>(c);
    }
    pos += len;
  }
  if (wire > max_name_wire) return false;  // the root's byte too
  q.host_name = host && !q.name.empty();
  return true;
}

// The one OPT record allowed in the additional section; false when it is anything else.
bool parse_opt(std::span<const uint8_t> b, size_t& pos, Query& q) {
  if (b.size() - pos < 11 || b[pos] != 0 || be16(b, pos + 1) != type_opt) return false;
  const uint16_t udp_size = be16(b, pos + 3);
  const uint8_t version = b[pos + 6];
  const size_t rdlen = be16(b, pos + 9);
  pos += 11;
  if (rdlen > b.size() - pos) return false;
  const size_t end = pos + rdlen;
  for (size_t o = pos; o < end;) {  // options are {code, length, data}: each must fit
    if (end - o < 4) return false;
    const size_t olen = be16(b, o + 2);
    o += 4;
    if (olen > end - o) return false;
    o += olen;
  }
  pos = end;
  q.edns = true;
  q.edns_version = version;
  q.udp_size = std::max<uint16_t>(udp_size, max_udp_without_edns);
  return true;
}

}  // namespace

Parsed parse(std::span<const uint8_t> b) {
  Parsed p;
  if (b.size() < header_size) return p;
  const uint16_t flags = be16(b, 2);
  if (flags & 0x8000) return p;
  p.msg.id = be16(b, 0);
  p.msg.opcode = static_cast<uint8_t>((flags >> 11) & 0xF);
  p.msg.rd = (flags & 0x0100) != 0;
  if (p.msg.opcode != 0) {
    p.kind = Parsed::notimp;
    return p;
  }
  p.kind = Parsed::formerr;
  if (be16(b, 4) != 1 || be16(b, 6) != 0 || be16(b, 8) != 0 || be16(b, 10) > 1) return p;
  Query q = p.msg;
  size_t pos = header_size;
  if (!parse_name(b, pos, q) || b.size() - pos < 4) return p;
  q.qtype = be16(b, pos);
  q.qclass = be16(b, pos + 2);
  pos += 4;
  q.question.assign(b.begin() + header_size, b.begin() + static_cast<ptrdiff_t>(pos));
  p.msg.question = q.question;
  if (be16(b, 10) == 1 && !parse_opt(b, pos, q)) return p;
  if (pos != b.size()) return p;  // bytes no count accounts for
  p.kind = Parsed::query;
  p.msg = std::move(q);
  return p;
}

std::vector<uint8_t> build(const Query& q, const Reply& reply, size_t limit) {
  const bool v6 = q.qtype == type_aaaa;
  std::vector<boost::asio::ip::address> answers;
  if (q.qtype == type_a || v6) {
    for (const auto& a : reply.addresses)
      if (a.is_v6() == v6) answers.push_back(a);
  }
  const size_t answer_size = v6 ? 2 + 10 + 16 : 2 + 10 + 4;
  std::string text = reply.error ? reply.error->text : std::string();
  const size_t base = header_size + q.question.size() + (q.edns ? 11 : 0);
  const size_t ede_fixed = 4 + 2;
  const bool ede = q.edns && reply.error && base + ede_fixed <= limit;
  if (ede) text.resize(std::min(text.size(), limit - base - ede_fixed));
  const size_t without_answers = base + (ede ? ede_fixed + text.size() : 0);
  const bool truncated = without_answers + answers.size() * answer_size > limit;
  if (truncated) answers.clear();

  // Only an OPT can carry an extended rcode: without one, BADVERS cannot be said.
  const uint8_t rcode = (reply.rcode > 15 && !q.edns) ? uint8_t{formerr} : reply.rcode;
  std::vector<uint8_t> out;
  out.reserve(without_answers + answers.size() * answer_size);
  put16(out, q.id);
  uint16_t flags = 0x8000 | static_cast<uint16_t>(q.opcode << 11) | 0x0080 | (rcode & 0xF);
  if (q.rd) flags |= 0x0100;
  if (truncated) flags |= 0x0200;
  put16(out, flags);
  put16(out, q.question.empty() ? 0 : 1);
  put16(out, static_cast<uint16_t>(answers.size()));
  put16(out, 0);
  put16(out, q.edns ? 1 : 0);
  out.insert(out.end(), q.question.begin(), q.question.end());
  for (const auto& a : answers) {
    put16(out, 0xC000 | header_size);  // the question's name
    put16(out, q.qtype);
    put16(out, class_in);
    put32(out, std::min<uint32_t>(reply.ttl_seconds, 0x7FFFFFFF));
    if (v6) {
      const auto bytes = a.to_v6().to_bytes();
      put16(out, static_cast<uint16_t>(bytes.size()));
      out.insert(out.end(), bytes.begin(), bytes.end());
    } else {
      const auto bytes = a.to_v4().to_bytes();
      put16(out, static_cast<uint16_t>(bytes.size()));
      out.insert(out.end(), bytes.begin(), bytes.end());
    }
  }
  if (q.edns) {
    out.push_back(0);  // root
    put16(out, type_opt);
    put16(out, 1232);  // what we take over UDP: the size that avoids fragmentation (DNS flag day 2020)
    out.push_back(static_cast<uint8_t>(rcode >> 4));
    out.push_back(0);  // version
    put16(out, 0);     // flags: no DNSSEC
    put16(out, static_cast<uint16_t>(ede ? ede_fixed + text.size() : 0));
    if (ede) {
      put16(out, 15);  // EDNS option: Extended DNS Error
      put16(out, static_cast<uint16_t>(2 + text.size()));
      put16(out, reply.error->code);
      out.insert(out.end(), text.begin(), text.end());
    }
  }
  return out;
}

}  // namespace boxcar::network::dns
