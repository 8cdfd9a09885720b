#include "images/reference.h"

#include <gtest/gtest.h>

namespace boxcar::images {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

TEST(ReferenceTest, DockerHubShortNamesGetLibraryAndLatest) {
  auto r = parse_reference("node");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->registry, "docker.io");
  EXPECT_EQ(r->repository, "library/node");
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->canonical(), "docker.io/library/node:latest");
  EXPECT_EQ(r->api_host(), "registry-1.docker.io");
  EXPECT_EQ(parse_reference("node:20")->canonical(), "docker.io/library/node:20");
  EXPECT_EQ(parse_reference("bitnami/redis:7")->canonical(), "docker.io/bitnami/redis:7");
  EXPECT_EQ(parse_reference("index.docker.io/node:20")->canonical(), "docker.io/library/node:20");
  EXPECT_EQ(parse_reference("docker.io/node")->canonical(), "docker.io/library/node:latest");
}

TEST(ReferenceTest, RegistryIsTheFirstComponentWithDotColonOrLocalhost) {
  auto r = parse_reference("ghcr.io/org/app:1.2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "ghcr.io");
  EXPECT_EQ(r->repository, "org/app");
  EXPECT_EQ(r->tag, "1.2");
  EXPECT_EQ(r->api_host(), "ghcr.io");
  auto p = parse_reference("registry:5000/x/y");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->registry, "registry:5000");
  EXPECT_EQ(p->repository, "x/y");
  EXPECT_EQ(p->tag, "latest");
  EXPECT_EQ(parse_reference("localhost/app")->registry, "localhost");
  EXPECT_EQ(parse_reference("127.0.0.1:5000/app:v1")->canonical(), "127.0.0.1:5000/app:v1");
  // Without a dot, colon or "localhost" it is a Docker Hub user.
  EXPECT_EQ(parse_reference("myuser/app")->canonical(), "docker.io/myuser/app:latest");
}

TEST(ReferenceTest, DigestPinsAndKeepsATagGivenBesideIt) {
  auto r = parse_reference("registry:5000/x/y@" + kDigest);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->digest, kDigest);
  EXPECT_EQ(r->manifest_ref(), kDigest);
  EXPECT_EQ(r->canonical(), "registry:5000/x/y@" + kDigest);
  auto both = parse_reference("reg.io/x:1@" + kDigest);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->tag, "1");
  EXPECT_EQ(both->manifest_ref(), kDigest);
  EXPECT_EQ(both->canonical(), "reg.io/x:1@" + kDigest);
}

TEST(ReferenceTest, SeparatorsInsideComponents) {
  EXPECT_TRUE(parse_reference("x/a.b_c__d-e---f/g").ok());
  EXPECT_TRUE(parse_reference("x:_tag.with-stuff").ok());
}

void expect_invalid(const std::string& text, const std::string& part) {
  auto r = parse_reference(text);
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.error().code, ErrorCode::invalid_input);
  EXPECT_NE(r.error().message.find("image \"" + text + "\""), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
}

TEST(ReferenceTest, BadTextIsRefusedNamingIt) {
  expect_invalid("", "empty");
  expect_invalid("Node:20", "lowercase");
  expect_invalid("node:", "tag \"\"");
  expect_invalid("node:.x", "tag");
  expect_invalid("node:" + std::string(129, 'a'), "tag");
  expect_invalid("node@sha256:abc", "digest");
  expect_invalid("node@md5:" + std::string(32, 'a'), "digest");
  expect_invalid("node@sha256:" + std::string(64, 'A'), "digest");
  expect_invalid("reg.io/", "no repository");
  expect_invalid("a//b", "component");
  expect_invalid("a/-b", "component");
  expect_invalid("a/b..c", "component");
  expect_invalid("node 20", "spaces");
  expect_invalid("reg.io:port/x", "registry");
  expect_invalid("reg.io/" + std::string(300, 'a'), "255");
}

}  // namespace
}  // namespace boxcar::images
