// SandboxClient against a real HttpServer on loopback that answers as the sandbox API does
// (scripted answers: the real service is tested end to end in tests/sandboxes/). What crosses
// the wire is real: SSE cut into pieces, an error answer, a file streamed up and down.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <fstream>
#include <thread>

#include "client/sandbox_client.h"
#include "http/http_server.h"

namespace boxcar::client {
namespace {

namespace bhttp = boost::beast::http;
using server::HttpRequest;
using server::HttpResponse;
using server::Responder;

const std::string kId = "abcdefgh2345";

server::RouteOptions big_body() {
  server::RouteOptions o;
  o.body_limit = 32 << 20;
  return o;
}

class SandboxClientLoopback : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add(bhttp::verb::post, "/api/v1/sandboxes", [](HttpRequest& req, std::shared_ptr<Responder> res) {
      auto body = boost::json::parse(req.body()).as_object();
      res->reply(HttpResponse::json(201, {{"id", kId}, {"name", body["name"]}, {"state", "running"}}));
    });
    router_.add(bhttp::verb::get, "/api/v1/sandboxes/{id}", [](HttpRequest& req, std::shared_ptr<Responder> res) {
      if (req.params["id"] != kId) {
        return res->reply(HttpResponse::error_code(404, "sandbox_not_found", "no sandbox " + req.params["id"]));
      }
      res->reply(HttpResponse::json(200, {{"id", kId}, {"state", "running"}}));
    });
    router_.add(bhttp::verb::post, "/api/v1/sandboxes/{id}/exec", [this](HttpRequest& req, std::shared_ptr<Responder> res) {
      exec_body_ = req.body();
      res->begin_stream(HttpResponse::text(200, "", "text/event-stream"));
      // Pieces cut across lines and events, a keep-alive, bytes that are not UTF-8.
      for (std::string piece : {std::string("event: start\ndata: {\"pid\":7}\n\n: keep-alive\n\nevent: std"),
                                std::string("out\ndata: {\"data\":\"he\"}\n\nevent: stdout\ndata: {\"data\":\"llo\\n\"}\n"),
                                std::string("\nevent: stderr\ndata: {\"data_b64\":\"/w==\"}\n\n"),
                                std::string(stream_ends_early_ ? "" : "event: exit\ndata: {\"outcome\":\"failed\",\"exit_code\":3}\n\n")}) {
        res->write(piece, [](bool) {});
      }
      res->end();
    });
    router_.add(bhttp::verb::put, "/api/v1/sandboxes/{id}/files/{path...}", [this](HttpRequest& req, std::shared_ptr<Responder> res) {
      uploaded_path_ = req.params["path"];
      uploaded_ = req.body();
      res->reply(HttpResponse::json(201, {{"path", "/" + uploaded_path_}, {"size", uploaded_.size()}}));
    }, big_body());
    router_.add(bhttp::verb::get, "/api/v1/sandboxes/{id}/files/{path...}", [this](HttpRequest&, std::shared_ptr<Responder> res) {
      res->reply(HttpResponse::text(200, uploaded_, "application/octet-stream"));
    });
    router_.add(bhttp::verb::get, "/api/v1/sandboxes/{id}/fs/stat", [this](HttpRequest&, std::shared_ptr<Responder> res) {
      res->reply(HttpResponse::json(200, {{"name", "x"}, {"type", "file"}, {"size", uploaded_.size()}}));
    });
    server_ = std::make_unique<server::HttpServer>(io_, router_);
    auto port = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok());
    url_ = "http://127.0.0.1:" + std::to_string(*port);
    thread_ = std::thread([this] { io_.run(); });
    auto api = SandboxClient::connect(url_, "token");
    ASSERT_TRUE(api.ok());
    api_ = std::move(*api);
  }
  void TearDown() override {
    server_->stop();
    io_.stop();
    thread_.join();
  }

  server::Router router_;
  boost::asio::io_context io_;
  std::unique_ptr<server::HttpServer> server_;
  std::thread thread_;
  std::string url_;
  std::unique_ptr<SandboxClient> api_;
  std::string exec_body_, uploaded_, uploaded_path_;
  bool stream_ends_early_ = false;
};

TEST_F(SandboxClientLoopback, AnExecStreamArrivesAsEventsAndEndsWithItsExit) {
  CreateOptions options;
  options.name = "demo";
  auto sb = api_->create(options);
  ASSERT_TRUE(sb.ok()) << sb.error().message;
  EXPECT_EQ(sb->id(), kId);
  std::vector<std::string> seen;
  std::string out, err;
  auto r = sb->exec_stream(Command::of_argv({"make"}), {}, [&](const OutputEvent& e) {
    seen.push_back(e.kind);
    (e.kind == "stdout" ? out : err) += e.data;
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->outcome, "failed");
  EXPECT_EQ(exit_code_of(*r), 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"start", "stdout", "stdout", "stderr", "exit"}));
  EXPECT_EQ(out, "hello\n");
  EXPECT_EQ(err.substr(err.size() - 1), "\xff");
  EXPECT_EQ(boost::json::parse(exec_body_), boost::json::parse(R"js({"argv":["make"],"stream":true})js"));
}

// Attack: a stream cut before its exit event is not taken for a finished command.
TEST_F(SandboxClientLoopback, AStreamWithoutItsExitIsAnError) {
  stream_ends_early_ = true;
  auto r = api_->sandbox(kId).exec_stream(Command::of_shell("true"), {}, [](const OutputEvent&) { return true; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
}

TEST_F(SandboxClientLoopback, AnErrorAnswerIsTheServersMessageWithItsCode) {
  auto missing = api_->get("zzzzzzzzzzzz");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "no sandbox zzzzzzzzzzzz");
  EXPECT_EQ(missing.error().subject, "sandbox_not_found");
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  EXPECT_TRUE(api_->get(kId).ok());  // control
}

TEST_F(SandboxClientLoopback, AFileGoesUpAndComesBackStreamedWithProgress) {
  std::string dir = ::testing::TempDir();
  std::string local = dir + "/boxcar_client_up.bin", back = dir + "/boxcar_client_back.bin";
  std::string bytes(3u << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 + (i >> 11));
  std::ofstream(local, std::ios::binary) << bytes;
  uint64_t last_done = 0, last_total = 0;
  auto files = api_->sandbox(kId).files();
  Status up = files.upload(local, "/workspace/dir/a b.bin", [&](uint64_t done, uint64_t total) {
    EXPECT_GE(done, last_done);
    last_done = done;
    last_total = total;
  });
  ASSERT_TRUE(up.ok()) << up.error().message;
  EXPECT_EQ(uploaded_path_, "workspace/dir/a b.bin");  // percent-encoded on the wire, decoded there
  EXPECT_TRUE(uploaded_ == bytes);
  EXPECT_EQ(last_done, bytes.size());
  EXPECT_EQ(last_total, bytes.size());
  Status down = files.download("/workspace/dir/a b.bin", back, [&](uint64_t done, uint64_t total) {
    last_done = done;
    last_total = total;
  });
  ASSERT_TRUE(down.ok()) << down.error().message;
  std::ifstream in(back, std::ios::binary);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(got == bytes);
  EXPECT_EQ(last_done, bytes.size());
  std::remove(local.c_str());
  std::remove(back.c_str());
}

}  // namespace
}  // namespace boxcar::client
