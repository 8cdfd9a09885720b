// What a real registry will not do on request, from a scripted server on loopback: a 503 then
// an answer (retried), 429 for ever (retries, then unavailable), 404 (never retried), a redirect
// to blob storage on another host (followed without the registry's credential), a blob longer
// than its descriptor says (refused), a registry that never answers (the pull's deadline and its
// cancel end the wait), terminal escapes in a registry's answers (shown escaped). The
// real-registry suite is tests/images/.
#include "images/registry_client.h"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
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
    // Never answers: the request hangs until the client gives up.
    router_.add(bhttp::verb::get, "/v2/silent/blobs/" + kBlobDigest, [this](HttpRequest&, std::shared_ptr<Responder> res) {
      std::lock_guard lock(held_mu_);
      held_.push_back(std::move(res));
    });
    router_.add(bhttp::verb::get, "/v2/hostile/manifests/1", [](HttpRequest&, std::shared_ptr<Responder> res) {
      std::string message = "\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2J\x1b[31mred" + std::string(5000, 'x');
      res->reply(HttpResponse::text(404, R"({"errors":[{"code":"NAME_UNKNOWN","message":")" + json_escape(message) + R"("}]})",
                                    "application/json"));
    });
    router_.add(bhttp::verb::get, "/v2/hostile/manifests/2", [](HttpRequest&, std::shared_ptr<Responder> res) {
      // A header value cannot carry ESC (the HTTP parser refuses it), but a bidi override can.
      res->reply(with_header(HttpResponse::text(401, "{}"), "WWW-Authenticate",
                             "Weird \u202erealm" + std::string(5000, 'x')));
    });
    registry_ = std::make_unique<ScriptedServer>(router_);
  }
  void TearDown() override {
    std::lock_guard lock(held_mu_);
    for (auto& r : held_) r->reply(HttpResponse::text(503, "bye"));
    held_.clear();
  }
  static std::string json_escape(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
    return out;
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
  std::mutex held_mu_;
  std::vector<std::shared_ptr<Responder>> held_;
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

namespace boxcar::images {
namespace {

// The per-request timeout (60 s of silence, tried 3 times) would hold a pull for minutes; the
// pull's own deadline ends it. Control: the same client, under a deadline, gets an answer that comes.
TEST_F(RegistryClientScriptedTest, APullDeadlineEndsASilentRegistry) {
  auto client = RegistryClient::make(options()).value();
  unique_fd fd(::memfd_create("blob", MFD_CLOEXEC));
  PullStop stop = PullStop::after(Millis(1500));
  auto status = client->fetch_blob(ref("silent"), Descriptor{"x", kBlobDigest, kBlob.size()}, fd.get(), nullptr, stop);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::limit_exceeded) << status.error().message;
  EXPECT_EQ(status.error().subject, "image_pull_timeout");
  EXPECT_NE(status.error().message.find("did not finish within 1.5s"), std::string::npos) << status.error().message;

  auto ok = client->resolve(ref("flaky"), PullStop::after(Millis(10'000)));  // a 503, then an answer
  EXPECT_TRUE(ok.ok()) << ok.error().message;
}

// A cancel set while the registry is silent ends the request; nothing else would for a minute.
TEST_F(RegistryClientScriptedTest, ACancelEndsAWaitingRequest) {
  auto client = RegistryClient::make(options()).value();
  unique_fd fd(::memfd_create("blob", MFD_CLOEXEC));
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    // Cancelled once the registry holds the request, so the wait itself is what ends.
    for (;;) {
      {
        std::lock_guard lock(held_mu_);
        if (!held_.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    cancel = true;
  });
  PullStop stop;
  stop.cancel = &cancel;
  auto status = client->fetch_blob(ref("silent"), Descriptor{"x", kBlobDigest, kBlob.size()}, fd.get(), nullptr, stop);
  canceller.join();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::conflict) << status.error().message;
  EXPECT_NE(status.error().message.find("cancelled"), std::string::npos) << status.error().message;
}

// What a registry says reaches the user's terminal: escapes shown as text, the length capped.
// Control: a plain answer is quoted as it is (A404IsAnAnswerNotRetried).
TEST_F(RegistryClientScriptedTest, RegistryTextInErrorsIsEscapedAndCapped) {
  auto client = RegistryClient::make(options()).value();
  auto m = client->resolve(parse_reference(registry_->address() + "/hostile:1").value());
  ASSERT_FALSE(m.ok());
  const std::string& text = m.error().message;
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
  EXPECT_NE(text.find("\\x1b]52;c;"), std::string::npos) << text;
  EXPECT_NE(text.find("NAME_UNKNOWN"), std::string::npos) << text;
  EXPECT_LT(text.size(), 1000u) << text;

  auto challenge = client->resolve(parse_reference(registry_->address() + "/hostile:2").value());
  ASSERT_FALSE(challenge.ok());
  EXPECT_EQ(challenge.error().message.find("\u202e"), std::string::npos) << challenge.error().message;
  EXPECT_NE(challenge.error().message.find("Weird \\u202erealm"), std::string::npos) << challenge.error().message;
  EXPECT_LT(challenge.error().message.size(), 1000u) << challenge.error().message;
}

}  // namespace
}  // namespace boxcar::images
