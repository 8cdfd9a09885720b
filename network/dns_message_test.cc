#include "network/dns_message.h"

#include <gtest/gtest.h>

namespace boxcar::network::dns {
namespace {

using Bytes = std::vector<uint8_t>;
namespace ip = boost::asio::ip;

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

// A query as a stub resolver writes it: one question, RD, optionally an OPT.
Bytes query(const std::string& name, uint16_t qtype = type_a, int udp_size = -1, uint16_t id = 0x1234) {
  Bytes b;
  put16(b, id);
  put16(b, 0x0100);
  put16(b, 1);
  put16(b, 0);
  put16(b, 0);
  put16(b, udp_size >= 0 ? 1 : 0);
  size_t start = 0;
  for (size_t dot; !name.empty() && start <= name.size(); start = dot + 1) {
    dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    b.push_back(static_cast<uint8_t>(dot - start));
    b.insert(b.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
  }
  b.push_back(0);
  put16(b, qtype);
  put16(b, class_in);
  if (udp_size >= 0) {
    b.push_back(0);
    put16(b, type_opt);
    put16(b, static_cast<uint16_t>(udp_size));
    put16(b, 0);
    put16(b, 0);
    put16(b, 0);
  }
  return b;
}

uint16_t at16(const Bytes& b, size_t i) { return static_cast<uint16_t>(b[i] << 8 | b[i + 1]); }

TEST(DnsMessage, ParsesAStubResolversQuery) {
  const Parsed p = parse(query("Registry.NPMjs.org", type_aaaa, 1232));
  ASSERT_EQ(p.kind, Parsed::query);
  EXPECT_EQ(p.msg.id, 0x1234);
  EXPECT_TRUE(p.msg.rd);
  EXPECT_EQ(p.msg.name, "registry.npmjs.org");
  EXPECT_TRUE(p.msg.host_name);
  EXPECT_EQ(p.msg.qtype, type_aaaa);
  EXPECT_TRUE(p.msg.edns);
  EXPECT_EQ(p.msg.udp_size, 1232);
}

TEST(DnsMessage, EveryTruncationOfAQueryIsRefusedWithoutReadingPastIt) {
  const Bytes whole = query("files.pythonhosted.org", type_a, 4096);
  ASSERT_EQ(parse(whole).kind, Parsed::query);  // control
  for (size_t n = 0; n < whole.size(); ++n) {
    const Bytes cut(whole.begin(), whole.begin() + static_cast<long>(n));
    const Parsed p = parse(cut);
    EXPECT_EQ(p.kind, n < header_size ? Parsed::drop : Parsed::formerr) << "cut at " << n;
  }
}

TEST(DnsMessage, CountsThatLieAreFormErrors) {
  Bytes b = query("example.com");
  b[5] = 2;  // qdcount 2, one question there
  EXPECT_EQ(parse(b).kind, Parsed::formerr);
  b[5] = 0;  // qdcount 0: the question becomes trailing bytes
  EXPECT_EQ(parse(b).kind, Parsed::formerr);
  b[5] = 1;
  b[11] = 1;  // arcount 1 without an additional record
  EXPECT_EQ(parse(b).kind, Parsed::formerr);
  b[11] = 0;
  b[7] = 0xff;  // ancount in a query
  EXPECT_EQ(parse(b).kind, Parsed::formerr);
  b[7] = 0;
  EXPECT_EQ(parse(b).kind, Parsed::query);  // control
}

TEST(DnsMessage, TwoQuestionsAreAFormError) {
  Bytes b = query("a.example");
  const Bytes second(b.begin() + header_size, b.end());
  b.insert(b.end(), second.begin(), second.end());
  b[5] = 2;
  const Parsed p = parse(b);
  EXPECT_EQ(p.kind, Parsed::formerr);
  EXPECT_EQ(p.msg.id, 0x1234);  // still echoable
}

TEST(DnsMessage, CompressionPointersAreNeverFollowed) {
  Bytes b = query("x");
  // The name becomes a pointer to itself (offset 12): a loop for a parser that follows it.
  b.resize(header_size);
  b.push_back(0xC0);
  b.push_back(header_size);
  put16(b, type_a);
  put16(b, class_in);
  EXPECT_EQ(parse(b).kind, Parsed::formerr);
  // A label followed by a pointer back to the header.
  Bytes c = query("x");
  c.resize(header_size);
  c.insert(c.end(), {1, 'a', 0xC0, 0x00});
  put16(c, type_a);
  put16(c, class_in);
  EXPECT_EQ(parse(c).kind, Parsed::formerr);
}

TEST(DnsMessage, LabelsOverSixtyThreeAndNamesOver255AreFormErrors) {
  EXPECT_EQ(parse(query(std::string(63, 'a') + ".com")).kind, Parsed::query);  // control
  // 64 is 0x40: a reserved label type, not a length.
  EXPECT_EQ(parse(query(std::string(64, 'a') + ".com")).kind, Parsed::formerr);
  std::string name;
  while (name.size() + 64 <= 253) name += std::string(63, 'b') + ".";
  name += std::string(253 - name.size(), 'c');  // 253 characters: 255 bytes on the wire
  EXPECT_EQ(parse(query(name)).kind, Parsed::query);
  EXPECT_EQ(parse(query(name + "c")).kind, Parsed::formerr);
}

TEST(DnsMessage, NamesThatAreNotHostNamesAreMarked) {
  const Parsed dotted = parse(query("a\\.b"));
  Bytes b = query("ab.example");
  b[header_size + 1] = '.';  // a label holding a dot: "..example" in text would lie
  const Parsed p = parse(b);
  ASSERT_EQ(p.kind, Parsed::query);
  EXPECT_FALSE(p.msg.host_name);
  const Parsed root = parse(query(""));
  ASSERT_EQ(root.kind, Parsed::query);
  EXPECT_FALSE(root.msg.host_name);
  EXPECT_FALSE(dotted.msg.host_name);
  EXPECT_TRUE(parse(query("_acme-challenge.x-1.example")).msg.host_name);
}

TEST(DnsMessage, ResponsesAndOtherOpcodes) {
  Bytes b = query("example.com");
  b[2] |= 0x80;  // QR: a response is never answered
  EXPECT_EQ(parse(b).kind, Parsed::drop);
  b[2] = 0x28 | 0x01;  // opcode 5 (UPDATE), RD
  const Parsed p = parse(b);
  EXPECT_EQ(p.kind, Parsed::notimp);
  EXPECT_EQ(p.msg.opcode, 5);
}

TEST(DnsMessage, OptMustBeWellFormedAndAlone) {
  Bytes b = query("example.com", type_a, 1400);
  b[b.size() - 1] = 8;  // rdlength 8, nothing there
  EXPECT_EQ(parse(b).kind, Parsed::formerr);
  Bytes opt = query("example.com", type_a, 1400);
  opt[opt.size() - 1] = 4;
  opt.insert(opt.end(), {0, 10, 0, 9});  // an option claiming 9 bytes with none
  EXPECT_EQ(parse(opt).kind, Parsed::formerr);
  Bytes two = query("example.com", type_a, 1400);
  const Bytes rr(two.end() - 11, two.end());
  two.insert(two.end(), rr.begin(), rr.end());
  two[11] = 2;
  EXPECT_EQ(parse(two).kind, Parsed::formerr);
  const Parsed small = parse(query("example.com", type_a, 100));
  ASSERT_EQ(small.kind, Parsed::query);
  EXPECT_EQ(small.msg.udp_size, 512);  // below 512 means 512 (RFC 6891 6.2.5)
}

TEST(DnsMessage, AHugeMessageIsReadOnlyAsFarAsItsQuestion) {
  Bytes b = query("example.com");
  b.resize(65535, 0xC0);  // the size of the largest TCP message, the rest hostile
  EXPECT_EQ(parse(b).kind, Parsed::formerr);
}

TEST(DnsMessage, ResponseEchoesTheQuestionWithAnswers) {
  const Parsed p = parse(query("Example.com", type_a));
  ASSERT_EQ(p.kind, Parsed::query);
  Reply r;
  r.addresses = {ip::make_address("192.0.2.7"), ip::make_address("2001:db8::1"), ip::make_address("192.0.2.8")};
  r.ttl_seconds = 42;
  const Bytes out = build(p.msg, r, 512);
  EXPECT_EQ(at16(out, 0), 0x1234);
  EXPECT_EQ(at16(out, 2), 0x8180);  // QR, RD, RA, NOERROR
  EXPECT_EQ(at16(out, 4), 1);
  EXPECT_EQ(at16(out, 6), 2);  // only the A records
  EXPECT_EQ(at16(out, 10), 0);  // no OPT to a client that sent none
  const size_t q_end = header_size + p.msg.question.size();
  EXPECT_EQ(Bytes(out.begin() + header_size, out.begin() + static_cast<long>(q_end)), p.msg.question);
  EXPECT_EQ(out[header_size + 1], 'E');  // echoed as written
  EXPECT_EQ(at16(out, q_end), 0xC00C);
  EXPECT_EQ(at16(out, q_end + 8), 42);
  EXPECT_EQ(out[q_end + 12], 192);
  EXPECT_EQ(out[q_end + 15], 7);
  EXPECT_EQ(out.size(), q_end + 2 * 16);
}

TEST(DnsMessage, AnswersThatDoNotFitAreLeftOutWithTC) {
  const Parsed p = parse(query("many.example", type_aaaa));
  Reply r;
  for (int i = 0; i < 40; ++i) r.addresses.push_back(ip::make_address("2001:db8::" + std::to_string(i + 1)));
  const Bytes udp = build(p.msg, r, 512);
  EXPECT_LE(udp.size(), 512u);
  EXPECT_TRUE(udp[2] & 0x02);  // TC
  EXPECT_EQ(at16(udp, 6), 0);
  const Bytes tcp = build(p.msg, r, 65535);  // control: over TCP they fit
  EXPECT_FALSE(tcp[2] & 0x02);
  EXPECT_EQ(at16(tcp, 6), 40);
}

TEST(DnsMessage, RefusalCarriesAnExtendedErrorOnlyToEdnsClients) {
  Reply r;
  r.rcode = refused;
  r.error = ExtendedError{ede_filtered, "not in any step's egress list"};
  const Parsed plain = parse(query("evil.example"));
  const Bytes a = build(plain.msg, r, 512);
  EXPECT_EQ(a[3] & 0xF, refused);
  EXPECT_EQ(at16(a, 10), 0);
  const Parsed edns = parse(query("evil.example", type_a, 1232));
  const Bytes b = build(edns.msg, r, 1232);
  EXPECT_EQ(at16(b, 10), 1);
  const std::string text(b.end() - static_cast<long>(r.error->text.size()), b.end());
  EXPECT_EQ(text, r.error->text);
  EXPECT_EQ(at16(b, b.size() - r.error->text.size() - 2), ede_filtered);
  EXPECT_EQ(at16(b, b.size() - r.error->text.size() - 6), 15);  // option code EDE
  r.error->text = std::string(2000, 'x');  // a long reason is shortened to fit
  EXPECT_LE(build(edns.msg, r, 512).size(), 512u);
}

TEST(DnsMessage, FormErrorEchoesTheHeader) {
  Bytes b = query("example.com");
  b[5] = 2;
  const Bytes out = build(parse(b).msg, rcode_reply(formerr), 512);
  ASSERT_EQ(out.size(), header_size);
  EXPECT_EQ(at16(out, 0), 0x1234);
  EXPECT_EQ(at16(out, 2), 0x8181);
  EXPECT_EQ(at16(out, 4), 0);
}

}  // namespace
}  // namespace boxcar::network::dns
