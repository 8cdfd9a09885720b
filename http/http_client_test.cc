// The one HttpClient against the real HttpServer on loopback: requests with headers and a
// token, a streamed body handed over as it arrives (the CLI's logs -f and downloads), an
// error answer's text, and the answer size cap (the agent's claims).
#include "http/http_client.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <thread>

#include "http/http_server.h"

namespace boxcar {
namespace {

namespace bhttp = boost::beast::http;
using server::HttpRequest;
using server::HttpResponse;
using server::Responder;

// An error answer whose body never ends: 16 KiB at a time while the client reads.
struct EndlessBody : std::enable_shared_from_this<EndlessBody> {
  explicit EndlessBody(std::shared_ptr<Responder> r) : res(std::move(r)) {}
  void next() {
    auto self = shared_from_this();
    res->write(chunk, [self](bool ok) {
      if (ok) self->next();
    });
  }
  std::shared_ptr<Responder> res;
  std::string chunk = std::string(16 << 10, 'e');
};

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add(bhttp::verb::put, "/echo", [](HttpRequest& req, std::shared_ptr<Responder> res) {
      res->reply(HttpResponse::text(200, req.header("authorization") + "|" + req.header("x-extra") +
                                             "|" + req.body()));
    });
    router_.add(bhttp::verb::get, "/echo-head", [](HttpRequest& req, std::shared_ptr<Responder> res) {
      res->reply(HttpResponse::text(200, req.header("authorization") + "|" + req.header("accept")));
    });
    router_.add(bhttp::verb::get, "/big", [](HttpRequest&, std::shared_ptr<Responder> res) {
      res->reply(HttpResponse::text(200, std::string(4096, 'x')));
    });
    router_.add(bhttp::verb::get, "/stream", [](HttpRequest&, std::shared_ptr<Responder> res) {
      res->begin_stream(HttpResponse::text(200, "", "text/event-stream"));
      res->write("one\n", [res](bool ok) {
        if (ok) res->write("two\n", [res](bool) { res->end(); });
      });
    });
    router_.add(bhttp::verb::get, "/missing", [](HttpRequest&, std::shared_ptr<Responder> res) {
      res->reply(HttpResponse::error(404, "no such job"));
    });
    router_.add(bhttp::verb::get, "/endless-error", [](HttpRequest&, std::shared_ptr<Responder> res) {
      res->begin_stream(HttpResponse::text(500, "", "text/plain"));
      std::make_shared<EndlessBody>(std::move(res))->next();
    });
    server_ = std::make_unique<server::HttpServer>(server_io_, router_);
    auto port = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.error().message;
    base_ = parse_server_url("http://127.0.0.1:" + std::to_string(*port)).value();
    thread_ = std::thread([this] { server_io_.run(); });
  }
  void TearDown() override {
    server_->stop();
    server_io_.stop();
    thread_.join();
  }

  struct Outcome {
    boost::system::error_code ec;
    HttpReply reply;
  };
  Outcome wait(boost::asio::io_context& io, std::optional<Outcome>& out) {
    io.run();
    EXPECT_TRUE(out.has_value());
    return out.value_or(Outcome{});
  }

  server::Router router_;
  boost::asio::io_context server_io_;
  std::unique_ptr<server::HttpServer> server_;
  std::thread thread_;
  ServerUrl base_;
};

TEST_F(HttpClientTest, SendsTheMethodBodyTokenAndHeadersGiven) {
  boost::asio::io_context io;
  HttpClient client(io, base_, "tok");
  std::optional<Outcome> out;
  client.send("PUT", "/echo", "body", "text/plain", Millis(10'000),
              [&](const boost::system::error_code& ec, HttpReply r) { out = Outcome{ec, std::move(r)}; },
              {{"X-Extra", "extra"}});
  Outcome o = wait(io, out);
  ASSERT_FALSE(o.ec) << o.ec.message();
  EXPECT_EQ(o.reply.status, 200u);
  EXPECT_EQ(o.reply.body, "Bearer tok|extra|body");
}

TEST_F(HttpClientTest, AStreamCarriesTheHeadersGiven) {
  boost::asio::io_context io;
  HttpClient client(io, base_, "");
  std::string got;
  std::optional<Outcome> out;
  client.stream("/echo-head", kNoTimeout, [&](std::string_view piece) { got += piece; return true; },
                [&](const boost::system::error_code& ec, HttpReply r) { out = Outcome{ec, std::move(r)}; },
                {{"Authorization", "Basic dTpw"}, {"Accept", "application/x-test"}});
  Outcome o = wait(io, out);
  ASSERT_FALSE(o.ec) << o.ec.message();
  EXPECT_EQ(got, "Basic dTpw|application/x-test");
}

TEST_F(HttpClientTest, AStreamedBodyArrivesInPiecesAndAnErrorAnswerKeepsItsText) {
  boost::asio::io_context io;
  HttpClient client(io, base_, "");
  std::string got;
  std::optional<Outcome> out;
  client.stream("/stream", kNoTimeout, [&](std::string_view piece) { got += piece; return true; },
                [&](const boost::system::error_code& ec, HttpReply r) { out = Outcome{ec, std::move(r)}; });
  Outcome o = wait(io, out);
  ASSERT_FALSE(o.ec) << o.ec.message();
  EXPECT_EQ(o.reply.status, 200u);
  EXPECT_EQ(got, "one\ntwo\n");
  // Not 200: on_data sees nothing, the reply holds the server's message.
  io.restart();
  got.clear();
  out.reset();
  client.stream("/missing", kNoTimeout, [&](std::string_view piece) { got += piece; return true; },
                [&](const boost::system::error_code& ec, HttpReply r) { out = Outcome{ec, std::move(r)}; });
  o = wait(io, out);
  ASSERT_FALSE(o.ec) << o.ec.message();
  EXPECT_EQ(o.reply.status, 404u);
  EXPECT_NE(o.reply.body.find("no such job"), std::string::npos) << o.reply.body;
  EXPECT_EQ(got, "");
}

// A streamed request's error answer is kept for its message up to 64 KiB; one whose body never
// ends is cut there instead of holding the command for ever (the control above: a short error
// answer keeps its whole text).
TEST_F(HttpClientTest, AnEndlessErrorAnswerToAStreamIsCutAt64KiB) {
  boost::asio::io_context io;
  HttpClient client(io, base_, "");
  std::string got;
  std::optional<Outcome> out;
  client.stream("/endless-error", kNoTimeout, [&](std::string_view piece) { got += piece; return true; },
                [&](const boost::system::error_code& ec, HttpReply r) { out = Outcome{ec, std::move(r)}; });
  io.run_for(std::chrono::seconds(30));  // a deadline for a broken client, not a measurement
  ASSERT_TRUE(out.has_value()) << "the endless error body was read on and on";
  EXPECT_EQ(out->reply.status, 500u);
  EXPECT_EQ(out->reply.body.size(), 64u << 10);
  EXPECT_EQ(got, "");
}

TEST_F(HttpClientTest, AnAnswerOverTheCapIsRefusedAndOneUnderItComes) {
  boost::asio::io_context io;
  HttpClient small(io, base_, "", nullptr, HttpClientOptions{"test", 1024});
  std::optional<Outcome> out;
  small.send("GET", "/big", "", "", Millis(10'000),
             [&](const boost::system::error_code& ec, HttpReply r) { out = Outcome{ec, std::move(r)}; });
  Outcome o = wait(io, out);
  EXPECT_EQ(o.ec, bhttp::error::body_limit) << o.ec.message();
  EXPECT_EQ(o.reply.status, 200u) << "the header came";
  // Control: the same answer under a cap it fits.
  io.restart();
  out.reset();
  HttpClient large(io, base_, "", nullptr, HttpClientOptions{"test", 8192});
  large.send("GET", "/big", "", "", Millis(10'000),
             [&](const boost::system::error_code& ec, HttpReply r) { out = Outcome{ec, std::move(r)}; });
  o = wait(io, out);
  ASSERT_FALSE(o.ec) << o.ec.message();
  EXPECT_EQ(o.reply.body.size(), 4096u);
}

TEST_F(HttpClientTest, ARefusedConnectionSaysItNeverConnected) {
  auto closed = parse_server_url("http://127.0.0.1:1").value();
  boost::asio::io_context io;
  HttpClient client(io, closed, "");
  std::optional<Outcome> out;
  client.send("GET", "/", "", "", Millis(10'000),
              [&](const boost::system::error_code& ec, HttpReply r) { out = Outcome{ec, std::move(r)}; });
  Outcome o = wait(io, out);
  ASSERT_TRUE(o.ec);
  EXPECT_EQ(o.reply.stage, HttpStage::connect) << o.ec.message();
}

}  // namespace
}  // namespace boxcar
