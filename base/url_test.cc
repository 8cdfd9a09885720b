#include "base/url.h"

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
  EXPECT_FALSE(parse_server_url("http://x:65536").ok());  // out of range
  EXPECT_FALSE(parse_server_url("http://x:99999").ok());
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
  // The CLI's copy took any name starting "127." for loopback, and sent the local admin token
  // to "127.evil.example".
  for (const char* host : {"192.0.2.1", "0.0.0.0", "::", "localhost.example", "127.0.0.1.nip.io",
                           "127.evil.example", "127.", "127.0.0.1.",
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

// Where the git token may go: the host is read by Boost.URL, never by hand.
TEST(Url, CredentialHostOnlyForPlainHttpsNamesWithoutUserinfo) {
  EXPECT_EQ(credential_host("https://github.com/o/r.git"), "github.com");
  EXPECT_EQ(credential_host("HTTPS://GitHub.COM:8443/o/r.git"), "github.com");
  EXPECT_EQ(credential_host("https://github.com/o/r@v1.git"), "github.com");  // '@' in the path
  EXPECT_EQ(credential_host("https://192.0.2.1/o/r.git"), "192.0.2.1");
  // An '@' after the authority is not userinfo: the host is the one before it.
  EXPECT_EQ(credential_host("https://evil.example#@github.com/"), "evil.example");
  EXPECT_EQ(credential_host("https://evil.example?@github.com/"), "evil.example");
  for (const char* url : {
           "http://github.com/o/r.git",              // in clear
           "ssh://github.com/o/r.git", "git@github.com:o/r.git", "/srv/github.com",
           "https://github.com@evil.example/",       // userinfo: the host is evil.example
           "https://@github.com/",                   // even an empty one
           "https://user:pw@github.com/",
           "https://github.com\\@evil.example/",
           "https://github.com:x/", "https:///o/r.git",
           "https://github.com:99999/",              // the hand parser took any digits
           "https://github.com:0/", "https://github.com:/",
           "https://[::1]/o/r.git",                  // IPv6 literals are not token hosts
           "https://git%68ub.com/o/r.git",           // nor percent-encoded names
           "https://127.0.0.1.nip.io"}) {
    EXPECT_FALSE(credential_host(url)) << url;
  }
}

TEST(Url, HostOfAnAbsoluteUrl) {
  EXPECT_EQ(url_host("https://CI.Example:8080/x"), "ci.example");
  EXPECT_EQ(url_host("http://[::1]:80"), "::1");
  EXPECT_EQ(url_host("ci.example"), "");
  EXPECT_EQ(url_host("http://127.0.0.1.nip.io"), "");
}

TEST(Url, PasswordInUserinfo) {
  EXPECT_TRUE(url_has_password("postgres://user:pw@db/boxcar"));
  EXPECT_TRUE(url_has_password("postgres://user:@db/boxcar"));
  EXPECT_FALSE(url_has_password("postgres://user@db/boxcar"));
  EXPECT_FALSE(url_has_password("postgres://db/boxcar"));
  EXPECT_FALSE(url_has_password("sqlite:/var/lib/boxcar/boxcar.db"));
  // Several hosts are not a URL Boost.URL reads: with an '@' it counts as a secret.
  EXPECT_TRUE(url_has_password("postgresql://u:pw@h1:5432,h2:5433/db"));
}

TEST(Url, RedactDropsUserinfoAndLeavesTheRest) {
  EXPECT_EQ(redact_url("https://user:pw@example.com/a.git"), "https://example.com/a.git");
  EXPECT_EQ(redact_url("https://tok@example.com:8443/a.git?x=1"), "https://example.com:8443/a.git?x=1");
  EXPECT_EQ(redact_url("https://u:p@[::1]:8/x"), "https://[::1]:8/x");
  EXPECT_EQ(redact_url("https://example.com/a@b.git"), "https://example.com/a@b.git");
  EXPECT_EQ(redact_url("/srv/git/a.git"), "/srv/git/a.git");
  EXPECT_EQ(redact_url("git@github.com:o/r.git"), "git@github.com:o/r.git");  // scp-style
  EXPECT_EQ(redact_url("https://u:p@host/a b.git"), "https://host/a b.git");  // not a URL
  EXPECT_EQ(redact_url("https://u:p@host/a@b c"), "https://b c");  // unparseable: all before the last '@'
}

TEST(Url, PercentEncodeKeepsUnreservedOnly) {
  EXPECT_EQ(percent_encode("build (linux, 1)", false), "build%20%28linux%2C%201%29");
  EXPECT_EQ(percent_encode("a/b~c.d-e_f", false), "a%2Fb~c.d-e_f");
  EXPECT_EQ(percent_encode("dist/a b.tar", true), "dist/a%20b.tar");
  EXPECT_EQ(percent_encode("\xc3\xa9%?#&=+", true), "%C3%A9%25%3F%23%26%3D%2B");
}

}  // namespace
}  // namespace boxcar
