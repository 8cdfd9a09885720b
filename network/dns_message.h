// DNS messages as the per-job resolver reads and writes them (RFC 1035, EDNS RFC 6891, Extended
// DNS Errors RFC 8914): a query parsed from hostile bytes, a response built for it. Pure, no I/O.
// The parser accepts only what a stub resolver sends: exactly one question whose name has no
// compression pointer, no answer or authority records, at most one OPT record; every length is
// checked against the bytes actually there, never against the counts the header claims.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace boxcar::network::dns {

inline constexpr size_t header_size = 12;
inline constexpr size_t max_name_wire = 255;  // RFC 1035 2.3.4
inline constexpr size_t max_udp_without_edns = 512;

enum Type : uint16_t { type_a = 1, type_aaaa = 28, type_opt = 41 };
inline constexpr uint16_t class_in = 1;

enum Rcode : uint8_t {
  noerror = 0, formerr = 1, servfail = 2, nxdomain = 3, notimp = 4, refused = 5,
  badvers = 16,  // an extended rcode: only with an OPT in the response
};

// Extended DNS Error info-codes (RFC 8914 section 4) the resolver uses.
enum EdeCode : uint16_t { ede_other = 0, ede_filtered = 17, ede_no_reachable_authority = 22 };

struct Query {
  uint16_t id = 0;
  uint8_t opcode = 0;
  bool rd = false;
  std::string name;        // lowercase, no trailing dot; "" for the root
  bool host_name = false;  // every label is letters, digits, '-' or '_' (what the policy can judge)
  std::vector<uint8_t> question;  // the question's wire bytes, echoed as the client wrote them
  uint16_t qtype = 0, qclass = 0;
  bool edns = false;
  uint8_t edns_version = 0;
  uint16_t udp_size = max_udp_without_edns;  // what the client can take over UDP (>= 512)
};

// What parse() made of the bytes: a query to answer; a FORMERR or NOTIMP to send with the
// header echoed (query.id, opcode, rd are set; the question too when it parsed); or nothing to
// send (shorter than a header, or a response: answering responses would let two resolvers loop).
struct Parsed {
  enum Kind { query, formerr, notimp, drop } kind = drop;
  Query msg;
};

Parsed parse(std::span<const uint8_t> bytes);

struct ExtendedError {
  uint16_t code = ede_other;
  std::string text;  // shortened so the response fits
};

struct Reply {
  uint8_t rcode = noerror;  // may be badvers
  std::vector<boost::asio::ip::address> addresses;  // answers of the query's type
  uint32_t ttl_seconds = 0;
  std::optional<ExtendedError> error;  // sent only to a client that sent an OPT
};

// A reply without answers: an error, or NODATA with `noerror`.
inline Reply rcode_reply(uint8_t rcode, std::optional<ExtendedError> error = std::nullopt) {
  Reply r;
  r.rcode = rcode;
  r.error = std::move(error);
  return r;
}

// The response to `q`: ID, opcode and RD copied, QR and RA set, the question echoed. It is at
// most `limit` bytes (the client's UDP size, or 65535 over TCP): when the answers do not fit they
// are left out and TC is set, so the client asks again over TCP; the extended error's text is
// shortened first. `q` may be a FORMERR/NOTIMP echo without a question.
std::vector<uint8_t> build(const Query& q, const Reply& reply, size_t limit);

}  // namespace boxcar::network::dns
