#include "git/url_guard.h"

#include <gtest/gtest.h>

namespace boxcar::git {
namespace {

TEST(UrlGuard, PublicAddressesOnly) {
  for (const char* a : {"127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                        "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00::1",
                        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "ff02::1", "not an address"}) {
    EXPECT_FALSE(is_public_address(a)) << a;
  }
  for (const char* a : {"93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"}) {
    EXPECT_TRUE(is_public_address(a)) << a;
  }
}

TEST(UrlGuard, HostOfEveryUrlForm) {
  EXPECT_EQ(git_url_host("https://u:t@GitHub.com:8443/o/r.git"), "github.com");
  EXPECT_EQ(git_url_host("git@Example.org:o/r.git"), "example.org");
  EXPECT_EQ(git_url_host("ssh://git@[::1]:22/r"), "::1");
  EXPECT_EQ(git_url_host("/srv/r.git"), "");
  EXPECT_EQ(git_url_host("file:///srv/r.git"), "");
}

TEST(UrlGuard, LoopbackRefusedNamingTheFlagPublicAllowed) {
  Status refused = check_public_url("http://user:secret@127.0.0.1:1/x.git");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("--sandbox-git-allow-private"), std::string::npos);
  EXPECT_EQ(refused.error().message.find("secret"), std::string::npos) << refused.error().message;
  EXPECT_EQ(refused.error().subject, "url");
  EXPECT_TRUE(check_public_url("https://93.184.216.34/x.git").ok()) << "control: a public literal needs no DNS";
}

}  // namespace
}  // namespace boxcar::git
