#include "base/server_url.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(ServerUrl, ParsesHttpAndHttpsWithDefaultPorts) {
  auto u = parse_server_url("http://127.0.0.1:8080/");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->authority, "127.0.0.1:8080");
  EXPECT_EQ(u->prefix, "");
  u = parse_server_url("https://ci.example/boxcar/");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->prefix, "/boxcar");
  EXPECT_EQ(u->text, "https://ci.example/boxcar");
  u = parse_server_url("HTTP://[::1]:9/");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->authority, "[::1]:9");
}

TEST(ServerUrl, RefusesWhatIsNotAServerUrl) {
  EXPECT_FALSE(parse_server_url("ftp://x").ok());
  EXPECT_FALSE(parse_server_url("http://x:abc").ok());
  EXPECT_FALSE(parse_server_url("http://x:0").ok());
  EXPECT_FALSE(parse_server_url("http://").ok());
  EXPECT_FALSE(parse_server_url("127.0.0.1:8080").ok());
  EXPECT_FALSE(parse_server_url("http://x/?a=b").ok());
  // Boost.URL 1.81 splits these after the address; the host must not be guessed.
  EXPECT_FALSE(parse_server_url("http://127.0.0.1.nip.io").ok());
  EXPECT_FALSE(parse_server_url("http://127.0.0.1:8080.evil/").ok());
  auto creds = parse_server_url("https://user:secret@ci.example");
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.error().message.find("secret"), std::string::npos) << creds.error().message;
}

TEST(ServerUrl, LoopbackIsLocalhostAnd127Slash8AndV6One) {
  for (const char* host : {"localhost", "LocalHost", "127.0.0.1", "127.1.2.3", "::1",
                           "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(is_loopback_host(host)) << host;
  }
  for (const char* host : {"192.0.2.1", "0.0.0.0", "::", "localhost.example", "127.0.0.1.nip.io",
                           "2130706433", "10.0.0.1", "::ffff:192.0.2.1"}) {
    EXPECT_FALSE(is_loopback_host(host)) << host;
  }
}

TEST(ServerUrl, TokensGoOverPlainHttpOnlyToLoopback) {
  // Control: loopback over http, anything over https.
  for (const char* url : {"http://127.0.0.1:8080", "http://localhost", "http://[::1]:1",
                          "https://192.0.2.1", "https://ci.example"}) {
    EXPECT_TRUE(check_token_transport(parse_server_url(url).value(), "agent token").ok()) << url;
  }
  // Attack: a token in clear to another machine.
  for (const char* url : {"http://192.0.2.1", "http://ci.example:8080", "http://0.0.0.0:8080",
                          "http://localhost.example", "http://127-0-0-1.example"}) {
    Status st = check_token_transport(parse_server_url(url).value(), "agent token");
    ASSERT_FALSE(st.ok()) << url;
    EXPECT_NE(st.error().message.find("refusing to send the agent token over plain http to "),
              std::string::npos)
        << st.error().message;
    EXPECT_NE(st.error().message.find("use https (boxcar serve --tls-cert ...)"), std::string::npos);
  }
}

}  // namespace
}  // namespace boxcar
