// What a real registry will not do on request, from a scripted server on loopback: a 503 then
// an answer (retried), 429 for ever (retries, then unavailable), 404 (never retried), a redirect
// to blob storage on another host (followed without the registry's credential), a blob longer
// than its descriptor says (refused). The real-registry suite is tests/images/.
#include "images/registry_client.h"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "base/base64.h"
#include "base/sha256.h"
#include "base/unique_fd.h"
#include "http/http_server.h"
#include "testing/scratch_dir.h"

namespace boxcar::images {
namespace {

namespace bhttp = boost::beast::http;
using server::HttpRequest;
using server::HttpResponse;
using server::Responder;

const std::string kBlob = "hello";
const std::string kBlobDigest = "sha256:" + sha256_hex("hello");

std::string manifest_body() {
  std::string d = "sha256:" + std::string(64, 'a');
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
         d + R"(","size":2},"layers":[]})";
}

HttpResponse with_header(HttpResponse r, std::string name, std::string value) {
  r.headers.emplace_back(std::move(name), std::move(value));
  return r;
}

class ScriptedServer {
 public:
  explicit ScriptedServer(server::Router& router) : server_(io_, router) {
    port_ = server_.listen("127.0.0.1", 0).value();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ScriptedServer() {
    server_.stop();
    io_.stop();
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  boost::asio::io_context io_;
  server::HttpServer server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

class RegistryClientScriptedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("DOCKER_CONFIG", "/nonexistent-boxcar-docker-config", 1);
    storage_router_.add(bhttp::verb::get, "/storage/blob", [this](HttpRequest& req, std::shared_ptr<Responder> res) {
      storage_auth_ = req.header("authorization");
      storage_sig_ = req.query_or("sig", "");
      res->reply(HttpResponse::text(200, kBlob, "application/octet-stream"));
    });
    storage_ = std::make_unique<ScriptedServer>(storage_router_);
    router_.add(bhttp::verb::get, "/v2/flaky/manifests/1", [this](HttpRequest&, std::shared_ptr<Responder> res) {
      if (flaky_hits_++ == 0) return res->reply(HttpResponse::text(503, "try later"));
      res->reply(HttpResponse::text(200, manifest_body(), "application/vnd.oci.image.manifest.v1+json"));
    });
    router_.add(bhttp::verb::get, "/v2/busy/manifests/1", [this](HttpRequest&, std::shared_ptr<Responder> res) {
      ++busy_hits_;
      res->reply(HttpResponse::text(429, R"({"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]})", "application/json"));
    });
    router_.add(bhttp::verb::get, "/v2/gone/manifests/1", [this](HttpRequest&, std::shared_ptr<Responder> res) {
      ++gone_hits_;
      res->reply(HttpResponse::text(404, R"({"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]})", "application/json"));
    });
    router_.add(bhttp::verb::get, "/v2/moved/blobs/" + kBlobDigest, [this](HttpRequest& req, std::shared_ptr<Responder> res) {
      if (req.header("authorization") != "Basic " + base64_encode("u:p")) {
        return res->reply(with_header(HttpResponse::text(401, "{}"), "WWW-Authenticate", "Basic realm=\"test\""));
      }
      res->reply(with_header(HttpResponse::text(307, ""), "Location",
                             "http://" + storage_->address() + "/storage/blob?sig=abc%2Fdef"));
    });
    router_.add(bhttp::verb::get, "/v2/long/blobs/" + kBlobDigest, [](HttpRequest&, std::shared_ptr<Responder> res) {
      res->reply(HttpResponse::text(200, kBlob + " and more", "application/octet-stream"));
    });
    registry_ = std::make_unique<ScriptedServer>(router_);
  }

  RegistryOptions options() {
    RegistryOptions o;
    o.insecure = {registry_->address()};
    o.attempts = 3;
    o.backoff = Millis(1);
    o.on_retry = [this](const std::string&) { ++retries_; };
    return o;
  }
  Reference ref(const std::string& repo) { return parse_reference(registry_->address() + "/" + repo + ":1").value(); }

  server::Router router_, storage_router_;
  std::unique_ptr<ScriptedServer> registry_, storage_;
  std::atomic<int> flaky_hits_{0}, busy_hits_{0}, gone_hits_{0}, retries_{0};
  std::string storage_auth_ = "unset", storage_sig_;
};

TEST_F(RegistryClientScriptedTest, A503IsTriedAgain) {
  auto m = RegistryClient::make(options()).value()->resolve(ref("flaky"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(flaky_hits_, 2);
  EXPECT_EQ(retries_, 1);
}

TEST_F(RegistryClientScriptedTest, Endless429EndsUnavailableAfterTheTries) {
  auto m = RegistryClient::make(options()).value()->resolve(ref("busy"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::unavailable);
  EXPECT_NE(m.error().message.find("TOOMANYREQUESTS slow down (tried 3 times)"), std::string::npos) << m.error().message;
  EXPECT_EQ(busy_hits_, 3);
}

TEST_F(RegistryClientScriptedTest, A404IsAnAnswerNotRetried) {
  auto m = RegistryClient::make(options()).value()->resolve(ref("gone"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::not_found);
  EXPECT_NE(m.error().message.find("NAME_UNKNOWN repository name not known"), std::string::npos) << m.error().message;
  EXPECT_EQ(gone_hits_, 1);
  EXPECT_EQ(retries_, 0);
}

TEST_F(RegistryClientScriptedTest, ARedirectToStorageElsewhereGetsNoRegistryCredential) {
  testing::ScratchDir dir;
  RegistryOptions o = options();
  o.auth_file = dir.dir / "auth.json";
  std::ofstream(o.auth_file) << R"({"auths":{")" << registry_->address() << R"(":{"username":"u","password":"p"}}})";
  auto client = RegistryClient::make(o).value();
  unique_fd fd(::memfd_create("blob", MFD_CLOEXEC));
  auto status = client->fetch_blob(ref("moved"), Descriptor{"x", kBlobDigest, kBlob.size()}, fd.get(), nullptr);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(storage_auth_, "");          // the registry's Basic credential stayed with the registry
  EXPECT_EQ(storage_sig_, "abc/def");    // the signed URL's query arrived intact
  char buf[16] = {};
  EXPECT_EQ(::pread(fd.get(), buf, sizeof buf, 0), static_cast<ssize_t>(kBlob.size()));
  EXPECT_EQ(std::string(buf), kBlob);
}

TEST_F(RegistryClientScriptedTest, ABlobLongerThanItsDescriptorIsRefused) {
  auto client = RegistryClient::make(options()).value();
  unique_fd fd(::memfd_create("blob", MFD_CLOEXEC));
  auto status = client->fetch_blob(ref("long"), Descriptor{"x", kBlobDigest, kBlob.size()}, fd.get(), nullptr);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find(kBlobDigest), std::string::npos) << status.error().message;
  EXPECT_NE(status.error().message.find("more than the 5 bytes"), std::string::npos) << status.error().message;
}

}  // namespace
}  // namespace boxcar::images
