#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <regex>

#include "testing/test_client.h"

namespace boxcar::server {
namespace {

namespace json = boost::json;
using testing::TestStream;

class ApiLogsTest : public testing::ServerFixture {
 protected:
  void upload(int64_t id, int64_t seq, const std::string& data, const std::string& step = "build") {
    auto r = agent_post("/api/v1/agent/jobs/" + std::to_string(id) + "/logs",
                        json::object{{"agent", "a1"},
                                     {"chunks", json::array{json::object{
                                                    {"step", step}, {"seq", seq}, {"data", data}}}}});
    ASSERT_EQ(r.status, 200u) << r.body;
  }
  void complete(int64_t id, const char* state) {
    auto r = agent_post("/api/v1/agent/jobs/" + std::to_string(id) + "/complete",
                        json::object{{"agent", "a1"}, {"state", state}});
    ASSERT_EQ(r.status, 200u) << r.body;
  }
  std::string follow_path(int64_t id) {
    return "/api/v1/jobs/" + std::to_string(id) + "/logs?follow=1";
  }
};

TEST_F(ApiLogsTest, FollowStreamsNewChunksThenTheEnd) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  upload(id, 0, "before\n");
  TestStream stream(port(), follow_path(id), api_headers());
  ASSERT_EQ(stream.status(), 200u);
  EXPECT_EQ(stream.header("Content-Type"), "text/event-stream");
  ASSERT_TRUE(stream.read_until("before")) << stream.text();

  upload(id, 1, "after\n");  // uploaded while the follower is waiting
  ASSERT_TRUE(stream.read_until("after")) << stream.text();
  // The event is the chunk's step, when it was stored (RFC 3339) and its bytes.
  EXPECT_TRUE(std::regex_search(
      stream.text(), std::regex("id: 13\nevent: log\ndata: \\{\"step\":\"build\",\"at\":\"[0-9T:.Z-]+\","
                                "\"data\":\"after\\\\n\"\\}")))
      << stream.text();

  complete(id, "failed");
  ASSERT_TRUE(stream.read_until("event: end")) << stream.text();
  EXPECT_NE(stream.text().find("\"state\":\"failed\""), std::string::npos) << stream.text();
  stream.read_until("never there", std::chrono::seconds(2));
  EXPECT_TRUE(stream.finished());
}

TEST_F(ApiLogsTest, FollowResumesFromLastEventId) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  upload(id, 0, "one\n");
  upload(id, 1, "two\n");
  complete(id, "success");
  TestStream stream(port(), follow_path(id), api_headers({{"Last-Event-ID", "4"}}));
  ASSERT_TRUE(stream.read_until("event: end")) << stream.text();
  EXPECT_EQ(stream.text().find("one"), std::string::npos) << stream.text();
  EXPECT_NE(stream.text().find("two"), std::string::npos) << stream.text();
}

TEST_F(ApiLogsTest, FollowOfAFinishedJobEndsAtOnce) {
  int64_t id = submit();
  ASSERT_EQ(client->post("/api/v1/jobs/" + std::to_string(id) + "/cancel", "").status, 202u);
  TestStream stream(port(), follow_path(id), api_headers());
  ASSERT_TRUE(stream.read_until("event: end")) << stream.text();
  EXPECT_NE(stream.text().find("cancelled"), std::string::npos);
}

TEST_F(ApiLogsTest, FollowFiltersByStep) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  upload(id, 0, "compile\n", "build");
  upload(id, 0, "check\n", "test");
  complete(id, "success");
  TestStream stream(port(), follow_path(id) + "&step=test", api_headers());
  ASSERT_TRUE(stream.read_until("event: end")) << stream.text();
  EXPECT_EQ(stream.text().find("compile"), std::string::npos);
  EXPECT_NE(stream.text().find("check"), std::string::npos);
}

TEST_F(ApiLogsTest, LogsOfAnUnknownJobAre404) {
  EXPECT_EQ(client->get("/api/v1/jobs/77/logs").status, 404u);
  EXPECT_EQ(client->get("/api/v1/jobs/77/logs?follow=1").status, 404u);
}

}  // namespace
}  // namespace boxcar::server
