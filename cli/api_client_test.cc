#include "cli/api_client.h"

#include <gtest/gtest.h>

namespace boxcar::cli {
namespace {

TEST(ApiClient, ATokenGoesInClearOnlyToThisMachine) {
  // Control: no token, or loopback, or https: a client is made (nothing is connected yet).
  EXPECT_TRUE(ApiClient::create("http://192.0.2.1:8080").ok());
  EXPECT_TRUE(ApiClient::create("http://127.0.0.1:8080", {"", "tok"}).ok());
  EXPECT_TRUE(ApiClient::create("http://localhost:8080", {"", "tok"}).ok());
  EXPECT_TRUE(ApiClient::create("https://192.0.2.1:8443", {"", "tok"}).ok());
  // Attack: a token towards plain http on another machine is refused when the client is made.
  auto refused = ApiClient::create("http://192.0.2.1:8080", {"", "tok"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message,
            "refusing to send the API token over plain http to 192.0.2.1: use https (boxcar serve "
            "--tls-cert ...)");
}

TEST(ApiClient, BadUrlsAndCaFilesAreNamed) {
  auto path = ApiClient::create("https://ci.example/boxcar");
  ASSERT_FALSE(path.ok());
  EXPECT_NE(path.error().message.find("must not have a path"), std::string::npos);
  auto ca = ApiClient::create("https://ci.example", {"/nonexistent/ca.pem", ""});
  ASSERT_FALSE(ca.ok());
  EXPECT_NE(ca.error().message.find("/nonexistent/ca.pem"), std::string::npos) << ca.error().message;
  // The CA file matters only for https.
  EXPECT_TRUE(ApiClient::create("http://127.0.0.1:8080", {"/nonexistent/ca.pem", ""}).ok());
}

// What a server says in an error goes to the user's terminal: escape sequences are shown, not
// run, and an unstructured body is cut short; a plain message (control) is shown as it is.
TEST(ApiClient, AServersErrorTextCannotDriveTheTerminal) {
  EXPECT_EQ(error_text(ApiReply{404, R"({"error":"no such job"})"}), "no such job");
  std::string hostile = error_text(ApiReply{500, "{\"error\":\"\\u001b]0;pwned\\u0007 \\u001b[2J\"}"});
  EXPECT_EQ(hostile.find('\x1b'), std::string::npos) << hostile;
  std::string page = error_text(ApiReply{502, std::string(100000, 'x')});
  EXPECT_LT(page.size(), 2000u);
  EXPECT_EQ(page.rfind("HTTP 502: xxx", 0), 0u) << page.substr(0, 40);
}

}  // namespace
}  // namespace boxcar::cli
