#include "images/docker_auth.h"

#include <gtest/gtest.h>

#include <fstream>

#include "base/base64.h"
#include "testing/scratch_dir.h"

namespace boxcar::images {
namespace {

TEST(DockerAuthTest, AuthFieldAndUsernamePasswordPerRegistry) {
  std::string text = R"({"auths":{
      "https://index.docker.io/v1/":{"auth":")" + base64_encode("hub:pw:with:colons") + R"("},
      "127.0.0.1:5000":{"username":"alice","password":"s3cret"},
      "http://reg.example:8080/v2/":{"auth":")" + base64_encode("bob:x") + R"("}}})";
  auto auth = DockerAuth::parse(text, "cfg.json");
  ASSERT_TRUE(auth.ok()) << auth.error().message;
  auto hub = auth->lookup("docker.io");
  ASSERT_TRUE(hub.basic);
  EXPECT_EQ(hub.basic->username, "hub");
  EXPECT_EQ(hub.basic->password, "pw:with:colons");
  auto local = auth->lookup("127.0.0.1:5000");
  ASSERT_TRUE(local.basic);
  EXPECT_EQ(local.basic->username, "alice");
  EXPECT_EQ(local.basic->password, "s3cret");
  EXPECT_EQ(auth->lookup("reg.example:8080").basic->username, "bob");
  EXPECT_FALSE(auth->lookup("127.0.0.1:5001").basic);
  EXPECT_TRUE(auth->lookup("127.0.0.1:5001").unsupported.empty());
}

TEST(DockerAuthTest, HelpersAreNamedAsUnsupported) {
  auto auth = DockerAuth::parse(R"({"auths":{"a.io":{"username":"u","password":"p"}},
      "credHelpers":{"gcr.io":"gcloud"},"credsStore":"desktop"})", "cfg.json");
  ASSERT_TRUE(auth.ok());
  EXPECT_TRUE(auth->lookup("a.io").basic);  // auths wins over the store
  auto gcr = auth->lookup("gcr.io");
  EXPECT_FALSE(gcr.basic);
  EXPECT_NE(gcr.unsupported.find("\"gcloud\" (credHelpers)"), std::string::npos) << gcr.unsupported;
  EXPECT_NE(gcr.unsupported.find("cfg.json"), std::string::npos);
  auto other = auth->lookup("docker.io");
  EXPECT_NE(other.unsupported.find("\"desktop\" (credsStore)"), std::string::npos) << other.unsupported;
}

TEST(DockerAuthTest, BadFilesAreUsageErrorsNamingTheFile) {
  auto notjson = DockerAuth::parse("{", "my.json");
  ASSERT_FALSE(notjson.ok());
  EXPECT_EQ(notjson.error().code, ErrorCode::usage);
  EXPECT_NE(notjson.error().message.find("my.json"), std::string::npos);
  auto badauth = DockerAuth::parse(R"({"auths":{"x.io":{"auth":"bm9jb2xvbg=="}}})", "my.json");
  ASSERT_FALSE(badauth.ok());
  EXPECT_NE(badauth.error().message.find("x.io"), std::string::npos);
  auto missing = DockerAuth::load("/nonexistent/boxcar/config.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/boxcar/config.json"), std::string::npos);
}

TEST(DockerAuthTest, DefaultFileFromDockerConfig) {
  testing::ScratchDir dir;
  std::ofstream(dir.dir / "config.json") << R"({"auths":{"r.io":{"username":"u","password":"p"}}})";
  ::setenv("DOCKER_CONFIG", dir.dir.c_str(), 1);
  auto auth = DockerAuth::load("");
  ::unsetenv("DOCKER_CONFIG");
  ASSERT_TRUE(auth.ok()) << auth.error().message;
  EXPECT_TRUE(auth->lookup("r.io").basic);
}

TEST(DockerAuthTest, KeysNormalize) {
  EXPECT_EQ(normalize_registry_key("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(normalize_registry_key("registry-1.docker.io"), "docker.io");
  EXPECT_EQ(normalize_registry_key("http://Reg:5000/x"), "reg:5000");
}

}  // namespace
}  // namespace boxcar::images
