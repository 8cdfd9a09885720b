#include "images/auth_challenge.h"

#include <gtest/gtest.h>

namespace boxcar::images {
namespace {

TEST(AuthChallengeTest, BearerWithRealmServiceScope) {
  auto c = parse_auth_challenge(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/node:pull")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, AuthChallenge::Scheme::bearer);
  EXPECT_EQ(c->realm, "https://auth.docker.io/token");
  EXPECT_EQ(c->service, "registry.docker.io");
  EXPECT_EQ(c->scope, "repository:library/node:pull");
}

TEST(AuthChallengeTest, CaseSpacesEscapesAndUnquotedValues) {
  auto c = parse_auth_challenge(R"(  bearer  REALM = "https://a/t\"x" , service=reg.io,scope="repository:a/b:pull,push")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->realm, "https://a/t\"x");
  EXPECT_EQ(c->service, "reg.io");
  EXPECT_EQ(c->scope, "repository:a/b:pull,push");
}

TEST(AuthChallengeTest, Basic) {
  auto c = parse_auth_challenge(R"(Basic realm="Registry Realm")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, AuthChallenge::Scheme::basic);
  EXPECT_EQ(c->realm, "Registry Realm");
}

TEST(AuthChallengeTest, OtherSchemesAndBrokenOnesAreNone) {
  EXPECT_FALSE(parse_auth_challenge("Negotiate abc"));
  EXPECT_FALSE(parse_auth_challenge(""));
  EXPECT_FALSE(parse_auth_challenge(R"(Bearer realm="unterminated)"));
  EXPECT_FALSE(parse_auth_challenge(R"(Bearer service="x")"));  // no realm: nowhere to ask
}

}  // namespace
}  // namespace boxcar::images
