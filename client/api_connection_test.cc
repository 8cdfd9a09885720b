#include "client/api_connection.h"

#include <gtest/gtest.h>

namespace boxcar::client {
namespace {

TEST(ApiFailure, TheServersMessageCodeAndFieldAreKept) {
  auto f = parse_failure(400, R"js({"error":"unknown field \"argvv\" (did you mean \"argv\"?)","code":"bad_request","field":"argvv"})js");
  EXPECT_EQ(f.message, "unknown field \"argvv\" (did you mean \"argv\"?)");
  EXPECT_EQ(f.code, "bad_request");
  EXPECT_EQ(f.field, "argvv");
  Error e = api_error(f);
  EXPECT_EQ(e.message, f.message);
  EXPECT_EQ(e.subject, "bad_request");
  EXPECT_EQ(e.code, ErrorCode::invalid_input);
}

TEST(ApiFailure, StatusesMapToErrorKinds) {
  EXPECT_EQ(api_error(parse_failure(404, R"({"error":"no sandbox","code":"sandbox_not_found"})")).code,
            ErrorCode::not_found);
  EXPECT_EQ(api_error(parse_failure(409, "{}")).code, ErrorCode::conflict);
  EXPECT_EQ(api_error(parse_failure(429, "{}")).code, ErrorCode::limit_exceeded);
  EXPECT_EQ(api_error(parse_failure(507, "{}")).code, ErrorCode::limit_exceeded);
  EXPECT_EQ(api_error(parse_failure(503, "{}")).code, ErrorCode::unavailable);
  EXPECT_EQ(api_error(parse_failure(401, "{}")).code, ErrorCode::usage);
}

// Attack: an answer that is not JSON, carries terminal escapes, or is huge is shown escaped and
// cut short. Control: a plain message passes as it is (above).
TEST(ApiFailure, AHostileAnswerIsShownEscapedAndShort) {
  auto html = parse_failure(502, "<html>" + std::string(5000, 'x'));
  EXPECT_EQ(html.message.rfind("HTTP 502: <html>", 0), 0u);
  EXPECT_LT(html.message.size(), 1100u);
  auto esc = parse_failure(400, "{\"error\":\"bad \\u001b]0;pwned\\u0007 input\"}");
  EXPECT_EQ(esc.message.find('\x1b'), std::string::npos) << esc.message;
  auto typed = parse_failure(400, R"({"error":42,"code":["x"]})");
  EXPECT_EQ(typed.code, "");
  EXPECT_EQ(typed.message.rfind("HTTP 400", 0), 0u);
}

TEST(ApiConnection, ATokenIsNotSentInClearToAnotherMachine) {
  auto refused = ApiConnection::open("http://ci.example.com:8080", "secret");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::usage);
  EXPECT_TRUE(ApiConnection::open("http://127.0.0.1:8080", "secret").ok());  // control: loopback
  EXPECT_FALSE(ApiConnection::open("http://127.0.0.1:8080/api", "").ok());
}

TEST(ApiConnection, AnUnreachableServerIsUnavailable) {
  // Port 1 on loopback: nothing listens there (and root could not be racing us for it).
  auto api = ApiConnection::open("http://127.0.0.1:1", "");
  ASSERT_TRUE(api.ok());
  auto got = (*api)->call("GET", "/api/v1/sandboxes");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::unavailable);
  EXPECT_NE(got.error().message.find("cannot reach the boxcar server at http://127.0.0.1:1"), std::string::npos)
      << got.error().message;
}

}  // namespace
}  // namespace boxcar::client
