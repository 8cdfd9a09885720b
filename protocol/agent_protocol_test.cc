#include "protocol/agent_protocol.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace boxcar::protocol {
namespace {

namespace json = boost::json;

template <typename T>
T round_trip(const T& value) {
  auto back = from_json<T>(json::parse(json::serialize(to_json(value))));
  EXPECT_TRUE(back.ok()) << (back.ok() ? "" : back.error().message);
  return back.ok() ? *back : T{};
}

TEST(AgentProtocolTest, RegisterRoundTripsAndChecksTheName) {
  RegisterRequest back = round_trip(RegisterRequest{"ci-1.example_b", {"linux"}});
  EXPECT_EQ(back.name, "ci-1.example_b");
  EXPECT_EQ(back.labels, std::vector<std::string>{"linux"});
  RegisterResponse answer = round_trip(RegisterResponse{7, "ci-1", "7.abc"});
  EXPECT_EQ(answer.agent_id, 7);
  EXPECT_EQ(answer.credential, "7.abc");
  for (const char* bad : {"", "-lead", "has space", "tab\t", "x/y", "\x1b[31m"}) {
    auto r = from_json<RegisterRequest>(json::value(json::object{{"name", bad}}));
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_FALSE(is_agent_name(std::string(65, 'a')));
  EXPECT_TRUE(is_agent_name(std::string(64, 'a')));
}

TEST(AgentProtocolTest, ClaimRequestRoundTrips) {
  ClaimRequest r{{"linux", "big"}, 1500};
  ClaimRequest back = round_trip(r);
  EXPECT_EQ(back.labels, (std::vector<std::string>{"linux", "big"}));
  EXPECT_EQ(back.wait_ms, 1500);
}

TEST(AgentProtocolTest, ClaimResponseRoundTrips) {
  ClaimResponse r;
  r.job = JobSpec{42, 2, "https://x/y.git", "refs/heads/main", "abc", ".boxcar.toml", "push",
                  {{"A", "1"}}, 30'000, "lease-token"};
  r.job.rerun_of = 41;
  r.job.previous_steps = {{"build", "success"}, {"test (os=linux)", "failed"}};
  JobSpec back = round_trip(r).job;
  EXPECT_EQ(back.rerun_of, 41);
  EXPECT_EQ(back.previous_steps, r.job.previous_steps);
  EXPECT_FALSE(round_trip(ClaimResponse{}).job.rerun_of);
  EXPECT_EQ(back.id, 42);
  EXPECT_EQ(back.attempt, 2);
  EXPECT_EQ(back.repo, "https://x/y.git");
  EXPECT_EQ(back.ref, "refs/heads/main");
  EXPECT_EQ(back.commit, "abc");
  EXPECT_EQ(back.file, ".boxcar.toml");
  EXPECT_EQ(back.event, "push");
  EXPECT_EQ(back.env.at("A"), "1");
  EXPECT_EQ(back.lease_ms, 30'000);
  EXPECT_EQ(back.lease_token, "lease-token");
}

TEST(AgentProtocolTest, HeartbeatRoundTrips) {
  round_trip(HeartbeatRequest{});
  HeartbeatResponse back = round_trip(HeartbeatResponse{true, false});
  EXPECT_TRUE(back.cancel);
  EXPECT_FALSE(back.lost);
}

TEST(AgentProtocolTest, LogUploadRoundTrips) {
  LogUpload u{{{"build", 1, 0, "hello\n"}, {"test", 2, 7, "x"}}};
  LogUpload back = round_trip(u);
  ASSERT_EQ(back.chunks.size(), 2u);
  EXPECT_EQ(back.chunks[1].step, "test");
  EXPECT_EQ(back.chunks[1].attempt, 2);
  EXPECT_EQ(back.chunks[1].seq, 7);
  EXPECT_EQ(back.chunks[0].data, "hello\n");
}

TEST(AgentProtocolTest, LogBytesThatAreNotUtf8TravelAsBase64) {
  const std::string binary("bin \xff\xfe\x00 \xc3", 9);
  LogUpload u{{{"bin", 1, 0, binary}, {"text", 1, 0, "caf\xc3\xa9\n"}}};
  json::value wire = to_json(u);
  const auto& chunks = wire.at("chunks").as_array();
  EXPECT_FALSE(chunks[0].as_object().contains("data"));
  EXPECT_EQ(chunks[0].at("data_base64").as_string(), "YmluIP/+ACDD");
  EXPECT_EQ(chunks[1].at("data").as_string(), "caf\xc3\xa9\n");
  // The text on the wire is valid UTF-8 JSON that a strict parser (the server's) accepts.
  boost::system::error_code ec;
  json::value parsed = json::parse(json::serialize(wire), ec);
  ASSERT_FALSE(ec) << ec.message();
  auto back = from_json<LogUpload>(parsed);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->chunks[0].data, binary);
  EXPECT_EQ(back->chunks[1].data, "caf\xc3\xa9\n");
}

TEST(AgentProtocolTest, BadBase64OrBothDataFieldsAreNamed) {
  auto bad = from_json<LogUpload>(
      json::parse(R"({"chunks":[{"step":"s","seq":0,"data_base64":"not base64!"}]})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("chunks[0].data_base64"), std::string::npos)
      << bad.error().message;
  auto both = from_json<LogUpload>(
      json::parse(R"({"chunks":[{"step":"s","seq":0,"data":"x","data_base64":"eA=="}]})"));
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.error().message.find("send one, not both"), std::string::npos)
      << both.error().message;
}

TEST(AgentProtocolTest, StepUpdateRoundTripsOptionalFields) {
  StepUpdate s{"build", "failed", 2, 1000, 2000, "exit 2", 3, {"lint", "gen (os=linux)"}};
  StepUpdate back = round_trip(s);
  EXPECT_EQ(back.egress_refused, 3);
  EXPECT_EQ(back.needs, (std::vector<std::string>{"lint", "gen (os=linux)"}));
  EXPECT_EQ(back.exit_code, 2);
  EXPECT_EQ(back.started_at, 1000);
  EXPECT_EQ(back.finished_at, 2000);
  EXPECT_EQ(back.reason, "exit 2");
  StepUpdate running = round_trip(StepUpdate{"build", "running", {}, 5, {}, "", {}, {}});
  EXPECT_FALSE(running.exit_code.has_value());
  EXPECT_FALSE(running.egress_refused.has_value());
  auto negative = protocol::from_json_text<StepUpdate>(R"({"name":"b","state":"failed","egress_refused":-1})");
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.error().message.find("egress_refused"), std::string::npos);
  EXPECT_FALSE(running.finished_at.has_value());
}

TEST(AgentProtocolTest, CompleteRoundTrips) {
  CompleteRequest back = round_trip(CompleteRequest{"skipped", "no [on] match"});
  EXPECT_EQ(back.state, "skipped");
  EXPECT_EQ(back.reason, "no [on] match");
}

TEST(AgentProtocolTest, PipelineReportRoundTripsAndCapsTheName) {
  PipelineReport back = round_trip(PipelineReport{"ci", false});
  EXPECT_EQ(back.name, "ci");
  EXPECT_FALSE(back.cancel_superseded);
  auto missing = from_json<PipelineReport>(json::parse(R"({"name":"ci"})"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cancel_superseded"), std::string::npos);
  json::object big{{"name", std::string(kMaxPipelineName + 1, 'x')}, {"cancel_superseded", true}};
  auto too_long = from_json<PipelineReport>(json::value(big));
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message.find("\"name\""), std::string::npos);
}

TEST(AgentProtocolTest, PreviewSyncRoundTripsAndChecksPorts) {
  PreviewSync s{{{"serve", "web", 8080, "http://h/", "http://p/", 1234}, {"serve", "api", 9, "u", "p", {}}}};
  PreviewSync back = round_trip(s);
  ASSERT_EQ(back.previews.size(), 2u);
  EXPECT_EQ(back.previews[0].port, 8080);
  EXPECT_EQ(back.previews[0].expires_at, 1234);
  EXPECT_FALSE(back.previews[1].expires_at.has_value());
  EXPECT_TRUE(round_trip(PreviewSyncResponse{true}).close);
  auto bad = from_json<PreviewSync>(json::parse(
      R"({"agent": "a", "previews": [{"step": "s", "name": "n", "port": 70000, "url": "", "path_url": ""}]})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("previews[0].port"), std::string::npos) << bad.error().message;
}

TEST(AgentProtocolTest, MissingFieldIsNamed) {
  auto r = from_json<StepUpdate>(json::parse(R"({"state": "running"})"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("\"name\""), std::string::npos) << r.error().message;
}

TEST(AgentProtocolTest, AnAgentFieldInABodyIsNotRead) {
  // Who reports is the credential's agent; an old agent's "agent" field is ignored.
  auto c = from_json<CompleteRequest>(json::parse(R"({"agent":"evil","state":"success"})"));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(json::serialize(to_json(*c)).find("agent") != std::string::npos);
}

TEST(AgentProtocolTest, MistypedNestedFieldIsNamed) {
  auto r = from_json<LogUpload>(
      json::parse(R"({"agent": "a", "chunks": [{"step": "s", "seq": 0, "data": ""},
                                               {"step": "s", "seq": "1", "data": ""}]})"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("chunks[1].seq"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("a string"), std::string::npos) << r.error().message;
}

TEST(AgentProtocolTest, UnknownStatesAreRejected) {
  auto step = from_json<StepUpdate>(json::parse(R"({"agent":"a","name":"b","state":"done"})"));
  ASSERT_FALSE(step.ok());
  EXPECT_NE(step.error().message.find("\"state\""), std::string::npos);
  auto done = from_json<CompleteRequest>(json::parse(R"({"agent":"a","state":"running"})"));
  ASSERT_FALSE(done.ok());
  EXPECT_NE(done.error().message.find("running"), std::string::npos);
}

TEST(AgentProtocolTest, NonObjectBodiesAreErrorsNotExceptions) {
  EXPECT_FALSE(from_json<ClaimRequest>(json::value(3)).ok());
  EXPECT_FALSE(from_json<HeartbeatResponse>(json::value("x")).ok());
  EXPECT_FALSE(from_json<LogUpload>(json::parse(R"({"agent":"a","chunks":{}})")).ok());
  EXPECT_FALSE(from_json<ClaimResponse>(json::parse(R"({"job": 1})")).ok());
}

TEST(AgentProtocolTest, FromJsonTextReportsSyntaxErrors) {
  auto r = from_json_text<HeartbeatRequest>("{\"agent\": ");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("malformed JSON"), std::string::npos);
  EXPECT_TRUE(from_json_text<HeartbeatRequest>(R"({"agent":"z"})").ok());
}

}  // namespace
}  // namespace boxcar::protocol
