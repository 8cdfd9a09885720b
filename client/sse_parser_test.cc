#include "client/sse_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace boxcar::client {
namespace {

std::vector<SseEvent> feed_in_pieces(const std::string& body, size_t piece) {
  SseParser parser;
  std::vector<SseEvent> got;
  for (size_t i = 0; i < body.size(); i += piece) {
    EXPECT_TRUE(parser.feed(std::string_view(body).substr(i, piece), [&](const SseEvent& e) {
      got.push_back(e);
      return true;
    }).ok());
  }
  return got;
}

TEST(SseParser, EventsSplitAnywhereComeOutWhole) {
  std::string body =
      ": keep-alive\n\n"
      "event: start\ndata: {\"pid\":31}\n\n"
      "id: 6\r\nevent: stdout\r\ndata: {\"data\":\"hello\\n\"}\r\n\r\n"
      "event: exit\rdata: {\"a\":1}\rdata: {\"b\":2}\r\r";
  for (size_t piece : {1u, 2u, 3u, 7u, 1000u}) {
    auto got = feed_in_pieces(body, piece);
    ASSERT_EQ(got.size(), 3u) << "pieces of " << piece;
    EXPECT_EQ(got[0].event, "start");
    EXPECT_EQ(got[0].data, "{\"pid\":31}");
    EXPECT_EQ(got[1].id, "6");
    EXPECT_EQ(got[1].event, "stdout");
    EXPECT_EQ(got[1].data, "{\"data\":\"hello\\n\"}");
    EXPECT_EQ(got[2].event, "exit");
    EXPECT_EQ(got[2].data, "{\"a\":1}\n{\"b\":2}");  // data lines joined by '\n'
  }
}

TEST(SseParser, AnUnnamedEventIsAMessageAndKeepAlivesAreNoEvents) {
  auto got = feed_in_pieces(": keep-alive\n\n: keep-alive\n\ndata:x\n\n", 5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].event, "message");
  EXPECT_EQ(got[0].data, "x");
}

TEST(SseParser, FalseFromTheCallbackStops) {
  SseParser parser;
  int seen = 0;
  ASSERT_TRUE(parser.feed("data: 1\n\ndata: 2\n\n", [&](const SseEvent&) {
    ++seen;
    return false;
  }).ok());
  EXPECT_EQ(seen, 1);
  EXPECT_TRUE(parser.stopped());
}

// Attack: a hostile server sends one endless event; the parser refuses it past its cap instead
// of buffering it. Control: an event just under the cap passes.
TEST(SseParser, AnEventPastTheCapIsAnErrorNotABuffer) {
  SseParser small(1024);
  std::string line = "data: " + std::string(2000, 'x');
  Status st = small.feed(line, [](const SseEvent&) { return true; });
  EXPECT_FALSE(st.ok());
  SseParser endless(1024);
  Status fed;
  for (int i = 0; i < 100 && fed.ok(); ++i) {
    fed = endless.feed("data: " + std::string(100, 'y') + "\n", [](const SseEvent&) { return true; });
  }
  EXPECT_FALSE(fed.ok()) << "many data lines of one event add up to the cap too";

  SseParser control(1024);
  int events = 0;
  ASSERT_TRUE(control.feed("data: " + std::string(1000, 'z') + "\n\n", [&](const SseEvent& e) {
    ++events;
    EXPECT_EQ(e.data.size(), 1000u);
    return true;
  }).ok());
  EXPECT_EQ(events, 1);
}

}  // namespace
}  // namespace boxcar::client
