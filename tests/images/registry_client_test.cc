// The registry client against Debian's docker-registry on loopback, with images the test builds
// and pushes: resolution by tag, by digest and through a multi-platform index; each failure
// (unknown image, no amd64, credentials, a registry down, plain http, a corrupted blob) beside a
// pull from the same registry that works.
#include "images/registry_client.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>

#include "base/base64.h"
#include "base/sha256.h"
#include "base/unique_fd.h"
#include "testing/registry_server.h"
#include "testing/scratch_dir.h"
#include "testing/test_ca.h"

namespace boxcar::images {
namespace {

using testing::RegistryServer;
using testing::TarEntry;
using testing::TestImage;
using testing::TestLayer;

TestImage small_image(const std::string& marker) {
  TestImage image;
  TestLayer base;
  base.entries.push_back(TarEntry::dir("etc"));
  base.entries.push_back(TarEntry::file("etc/marker", marker));
  image.layers.push_back(base);
  TestLayer top;
  top.gzip = false;
  top.entries.push_back(TarEntry::file("hello", "hello " + marker, 0755));
  image.layers.push_back(top);
  image.env = {"PATH=/bin", "MARKER=" + marker};
  image.user = "1000:1000";
  image.entrypoint = {"/bin/sh", "-c"};
  image.cmd = {"echo hi"};
  return image;
}

RegistryOptions quick(const std::string& insecure) {
  RegistryOptions o;
  o.insecure = {insecure};
  o.attempts = 2;
  o.backoff = Millis(20);
  o.timeout = Millis(20'000);
  return o;
}

Reference ref_of(const std::string& text) { return parse_reference(text).value(); }

std::string blob_text(RegistryClient& client, const Reference& ref, const Descriptor& d, Status* status) {
  unique_fd fd(::memfd_create("blob", MFD_CLOEXEC));
  *status = client.fetch_blob(ref, d, fd.get(), nullptr);
  std::string out(static_cast<size_t>(::lseek(fd.get(), 0, SEEK_END)), '\0');
  if (!out.empty()) {
    EXPECT_EQ(::pread(fd.get(), out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
  }
  return out;
}

class RegistryClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::setenv("DOCKER_CONFIG", "/nonexistent-boxcar-docker-config", 1);  // never the machine's own
    auto r = RegistryServer::start();
    ASSERT_TRUE(r.ok()) << r.error().message;
    registry_ = r->release();
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }
  static RegistryServer* registry_;
};
RegistryServer* RegistryClientTest::registry_ = nullptr;

TEST_F(RegistryClientTest, ResolvesByTagAndByDigestAndFetchesVerifiedBlobs) {
  auto pushed = registry_->push("team/app:1", small_image("one"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  auto client = RegistryClient::make(quick(registry_->address())).value();
  auto ref = ref_of(pushed->reference);
  auto m = client->resolve(ref);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->digest, pushed->manifest_digest);
  EXPECT_EQ(m->config.digest, pushed->config_digest);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].digest, pushed->layer_digests[0]);
  EXPECT_EQ(m->layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_EQ(m->layers[1].media_type, "application/vnd.oci.image.layer.v1.tar");

  auto config = client->fetch_config(ref, *m);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->env, (std::vector<std::string>{"PATH=/bin", "MARKER=one"}));
  EXPECT_EQ(config->user, "1000:1000");
  EXPECT_EQ(config->entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
  EXPECT_EQ(config->cmd, (std::vector<std::string>{"echo hi"}));

  Status status;
  std::string layer = blob_text(*client, ref, m->layers[1], &status);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ("sha256:" + sha256_hex(layer), m->layers[1].digest);
  EXPECT_NE(layer.find("hello one"), std::string::npos);

  auto by_digest = client->resolve(ref_of(registry_->address() + "/team/app@" + pushed->manifest_digest));
  ASSERT_TRUE(by_digest.ok()) << by_digest.error().message;
  EXPECT_EQ(by_digest->digest, pushed->manifest_digest);
}

TEST_F(RegistryClientTest, AnIndexResolvesToLinuxAmd64VariantAware) {
  TestImage arm = small_image("arm64");
  arm.architecture = "arm64";
  arm.variant = "v8";
  TestImage amd = small_image("amd64");
  TestImage armv7 = small_image("armv7");
  armv7.architecture = "arm";
  armv7.variant = "v7";
  auto pushed = registry_->push_index("multi:1", {amd, arm, armv7});
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  auto client = RegistryClient::make(quick(registry_->address())).value();
  auto m = client->resolve(ref_of(pushed->reference));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->digest, pushed->manifest_digest);  // the amd64 entry (the first pushed)
  auto config = client->fetch_config(ref_of(pushed->reference), *m);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->env[1], "MARKER=amd64");

  RegistryOptions arm7 = quick(registry_->address());
  arm7.architecture = "arm";
  arm7.variant = "v7";
  auto client7 = RegistryClient::make(arm7).value();
  auto m7 = client7->resolve(ref_of(pushed->reference));
  ASSERT_TRUE(m7.ok()) << m7.error().message;
  EXPECT_EQ(client7->fetch_config(ref_of(pushed->reference), *m7)->env[1], "MARKER=armv7");
}

TEST_F(RegistryClientTest, AnIndexWithoutAmd64NamesThePlatformsItHas) {
  TestImage arm = small_image("arm64");
  arm.architecture = "arm64";
  TestImage s390 = small_image("s390x");
  s390.architecture = "s390x";
  auto pushed = registry_->push_index("armonly:1", {arm, s390});
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  auto client = RegistryClient::make(quick(registry_->address())).value();
  auto m = client->resolve(ref_of(pushed->reference));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::not_found);
  EXPECT_NE(m.error().message.find("no manifest for linux/amd64"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find("linux/arm64, linux/s390x"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find(pushed->reference), std::string::npos) << m.error().message;
}

TEST_F(RegistryClientTest, UnknownRepositoryAndTagAreNotFoundWithTheRegistrysAnswer) {
  auto pushed = registry_->push("known:1", small_image("known"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  auto client = RegistryClient::make(quick(registry_->address())).value();
  ASSERT_TRUE(client->resolve(ref_of(pushed->reference)).ok());  // control

  auto tag = client->resolve(ref_of(registry_->address() + "/known:2"));
  ASSERT_FALSE(tag.ok());
  EXPECT_EQ(tag.error().code, ErrorCode::not_found);
  EXPECT_NE(tag.error().message.find("image \"" + registry_->address() + "/known:2\" not found in registry " +
                                     registry_->address() + ": MANIFEST_UNKNOWN"),
            std::string::npos)
      << tag.error().message;

  auto repo = client->resolve(ref_of(registry_->address() + "/nobody/here:1"));
  ASSERT_FALSE(repo.ok());
  EXPECT_EQ(repo.error().code, ErrorCode::not_found);
  EXPECT_NE(repo.error().message.find("nobody/here:1\" not found"), std::string::npos) << repo.error().message;
  EXPECT_NE(repo.error().message.find("UNKNOWN"), std::string::npos) << repo.error().message;
}

TEST_F(RegistryClientTest, ACorruptedBlobFailsNamingItsDigest) {
  auto pushed = registry_->push("corrupt:1", small_image("corrupt"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  auto client = RegistryClient::make(quick(registry_->address())).value();
  auto ref = ref_of(pushed->reference);
  auto m = client->resolve(ref).value();
  Status status;
  blob_text(*client, ref, m.layers[1], &status);
  ASSERT_TRUE(status.ok()) << status.error().message;  // control: intact before
  ASSERT_TRUE(registry_->corrupt_blob(m.layers[0].digest).ok());
  blob_text(*client, ref, m.layers[0], &status);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find(m.layers[0].digest), std::string::npos) << status.error().message;
  EXPECT_NE(status.error().message.find("does not match its digest"), std::string::npos) << status.error().message;
}

TEST_F(RegistryClientTest, PlainHttpFromARegistryNotNamedInsecureIsAClearError) {
  auto pushed = registry_->push("plain:1", small_image("plain"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  RegistryOptions strict = quick("other:5000");
  auto client = RegistryClient::make(strict).value();
  auto m = client->resolve(ref_of(pushed->reference));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::usage);
  EXPECT_NE(m.error().message.find("answers plain http"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find("add --insecure-registry " + registry_->address()), std::string::npos)
      << m.error().message;
  // Control: named insecure, the same image resolves.
  EXPECT_TRUE(RegistryClient::make(quick(registry_->address())).value()->resolve(ref_of(pushed->reference)).ok());
}

TEST(RegistryClientDownTest, ARegistryThatIsDownIsUnavailableNamingHostAndPort) {
  ::setenv("DOCKER_CONFIG", "/nonexistent-boxcar-docker-config", 1);
  auto r = RegistryServer::start();
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto registry = std::move(*r);
  auto pushed = registry->push("gone:1", small_image("gone"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  int retries = 0;
  RegistryOptions o = quick(registry->address());
  o.on_retry = [&](const std::string&) { ++retries; };
  auto client = RegistryClient::make(o).value();
  ASSERT_TRUE(client->resolve(ref_of(pushed->reference)).ok());  // control: up
  registry->stop();
  auto m = client->resolve(ref_of(pushed->reference));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::unavailable);
  EXPECT_NE(m.error().message.find("unreachable at " + registry->address()), std::string::npos) << m.error().message;
  EXPECT_EQ(retries, 1);  // two attempts
}

class RegistryAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("DOCKER_CONFIG", "/nonexistent-boxcar-docker-config", 1);
    auto r = RegistryServer::start(RegistryServer::Options::htpasswd("alice", "s3cret"));
    ASSERT_TRUE(r.ok()) << r.error().message;
    registry_ = std::move(*r);
    auto pushed = registry_->push("private:1", small_image("private"));
    ASSERT_TRUE(pushed.ok()) << pushed.error().message;
    ref_ = ref_of(pushed->reference);
  }
  RegistryOptions with_auth(const std::string& user, const std::string& password) {
    RegistryOptions o = quick(registry_->address());
    o.auth_file = dir_.dir / "config.json";
    std::ofstream(o.auth_file) << R"({"auths":{")" << registry_->address() << R"(":{"auth":")"
                               << base64_encode(user + ":" + password) << R"("}}})";
    return o;
  }
  testing::ScratchDir dir_;
  std::unique_ptr<RegistryServer> registry_;
  Reference ref_;
};

TEST_F(RegistryAuthTest, NoCredentialsIsAClearRefusal) {
  auto m = RegistryClient::make(quick(registry_->address())).value()->resolve(ref_);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::usage);
  EXPECT_NE(m.error().message.find("requires credentials"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find("--registry-auth"), std::string::npos) << m.error().message;
}

TEST_F(RegistryAuthTest, WrongCredentialsAreRefused) {
  auto m = RegistryClient::make(with_auth("alice", "wrong")).value()->resolve(ref_);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::usage);
  EXPECT_NE(m.error().message.find("refused the credentials of user \"alice\""), std::string::npos)
      << m.error().message;
}

TEST_F(RegistryAuthTest, RightCredentialsFromTheAuthFilePull) {
  auto client = RegistryClient::make(with_auth("alice", "s3cret")).value();
  auto m = client->resolve(ref_);
  ASSERT_TRUE(m.ok()) << m.error().message;
  Status status;
  std::string layer = blob_text(*client, ref_, m->layers[1], &status);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_NE(layer.find("hello private"), std::string::npos);
}


// A registry run with `auth: token` drives the Bearer challenge: realm, service and scope.
TEST(RegistryTokenAuthTest, AnonymousTokensAreFetchedOnceAndReusedForTheirLifetime) {
  ::setenv("DOCKER_CONFIG", "/nonexistent-boxcar-docker-config", 1);
  RegistryServer::Options options;
  options.token_auth = true;
  auto r = RegistryServer::start(options);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto registry = std::move(*r);
  auto pushed = registry->push("tokened:1", small_image("tokened"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  size_t before = registry->tokens_issued();
  auto client = RegistryClient::make(quick(registry->address())).value();
  auto ref = ref_of(pushed->reference);
  auto m = client->resolve(ref);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_TRUE(client->fetch_config(ref, *m).ok());
  Status status;
  blob_text(*client, ref, m->layers[0], &status);
  ASSERT_TRUE(status.ok()) << status.error().message;
  ASSERT_TRUE(client->resolve(ref).ok());
  EXPECT_EQ(registry->tokens_issued() - before, 1u);  // one token for the repository's pull scope
  // Control: the registry does want a token: a request without one is refused.
  EXPECT_NE(registry->access_log().find("\" 401 "), std::string::npos) << registry->access_log();
}

TEST(RegistryTokenAuthTest, TheTokenServiceChecksTheBasicCredentials) {
  ::setenv("DOCKER_CONFIG", "/nonexistent-boxcar-docker-config", 1);
  RegistryServer::Options options;
  options.token_auth = true;
  options.username = "carol";
  options.password = "pw";
  auto r = RegistryServer::start(options);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto registry = std::move(*r);
  auto pushed = registry->push("tokened:1", small_image("tokened"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  testing::ScratchDir dir;
  auto with = [&](const std::string& password) {
    RegistryOptions o = quick(registry->address());
    o.auth_file = dir.dir / ("auth-" + password + ".json");
    std::ofstream(o.auth_file) << R"({"auths":{")" << registry->address() << R"(":{"username":"carol","password":")"
                               << password << R"("}}})";
    return RegistryClient::make(o).value();
  };
  auto refused = with("wrong")->resolve(ref_of(pushed->reference));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::usage);
  EXPECT_NE(refused.error().message.find("refused the credentials of user \"carol\""), std::string::npos)
      << refused.error().message;
  auto anonymous = RegistryClient::make(quick(registry->address())).value()->resolve(ref_of(pushed->reference));
  ASSERT_FALSE(anonymous.ok());
  EXPECT_NE(anonymous.error().message.find("requires credentials"), std::string::npos) << anonymous.error().message;
  auto ok = with("pw")->resolve(ref_of(pushed->reference));
  EXPECT_TRUE(ok.ok()) << ok.error().message;
}

// The default path: https, the certificate checked against the CAs given.
TEST(RegistryTlsTest, HttpsWithTheRegistrysCaPullsAndWithoutItTheCertificateIsRefused) {
  ::setenv("DOCKER_CONFIG", "/nonexistent-boxcar-docker-config", 1);
  testing::ScratchDir dir;
  testing::TestCa ca(dir.dir);
  ASSERT_TRUE(ca.ok() && ca.issue("registry", "IP:127.0.0.1")) << ca.error();
  RegistryServer::Options options;
  options.tls_cert = ca.cert("registry");
  options.tls_key = ca.key("registry");
  auto r = RegistryServer::start(options);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto registry = std::move(*r);
  auto pushed = registry->push("secure:1", small_image("secure"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  RegistryOptions trusted;
  trusted.ca_file = ca.ca_pem();
  auto client = RegistryClient::make(trusted).value();
  auto ref = ref_of(pushed->reference);
  auto m = client->resolve(ref);
  ASSERT_TRUE(m.ok()) << m.error().message;
  Status status;
  blob_text(*client, ref, m->layers[0], &status);
  EXPECT_TRUE(status.ok()) << status.error().message;

  RegistryOptions system_cas;
  system_cas.attempts = 1;
  auto refused = RegistryClient::make(system_cas).value()->resolve(ref);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::unavailable);
  EXPECT_NE(refused.error().message.find("certificate"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("not trusted"), std::string::npos) << refused.error().message;
  EXPECT_EQ(refused.error().message.find("--ca-file"), std::string::npos) << refused.error().message;  // not a flag here
}

}  // namespace
}  // namespace boxcar::images
