// The shared test suite base of sandboxes_test: one HostFixture (native executor, SandboxHost,
// HttpServer on loopback) and one sandbox of owner "alice" for the whole suite, with helpers to
// call its routes.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "protocol/json_reader.h"
#include "sandboxes/host_fixture.h"

namespace boxcar::sandboxes {

class SandboxSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto f = HostFixture::make();
    if (!f) {
      skip_ = f.error().message;
      return;
    }
    f_ = std::move(*f).release();
    auto id = f_->create_sandbox("alice");
    if (!id) {
      skip_ = id.error().message;
      return;
    }
    id_ = *id;
  }
  static void TearDownTestSuite() {
    delete f_;
    f_ = nullptr;
  }
  void SetUp() override {
    if (f_ == nullptr || id_.empty()) GTEST_SKIP() << skip_;
  }

  static boost::json::value parse(const std::string& body) {
    auto v = protocol::parse_json(body);
    return v ? *v : boost::json::value();
  }
  // POST `rest` of the suite's sandbox with a JSON body; the answer's JSON (null if none).
  static HttpReply post(const std::string& rest, const boost::json::value& body, const std::string& id = "",
                        const std::string& owner = "alice") {
    return f_->call_json("POST", HostFixture::path(id.empty() ? id_ : id, rest), body, owner);
  }
  static HttpReply get(const std::string& rest, const std::string& id = "") {
    return f_->call("GET", HostFixture::path(id.empty() ? id_ : id, rest));
  }
  // POST /exec and its answer as JSON (a failed call fails the test).
  static boost::json::object exec(const boost::json::value& body, const std::string& id = "") {
    HttpReply r = post("/exec", body, id);
    EXPECT_EQ(r.status, 200u) << r.body << r.local_error;
    auto v = parse(r.body);
    return v.is_object() ? v.as_object() : boost::json::object{};
  }
  static std::string str(const boost::json::object& o, const char* key) {
    auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  }

  // Whether the executor reports started commands (ExecControl: pid, stdin, signals, trees).
  static bool has_exec_control() {
    HttpReply r = post("/exec", {{"argv", {"true"}}, {"stream", true}});
    return r.body.find("event: start") != std::string::npos;
  }

  // The events of a server-sent-events body: (name, data as JSON).
  static std::vector<std::pair<std::string, boost::json::object>> sse_events(const std::string& body) {
    std::vector<std::pair<std::string, boost::json::object>> out;
    size_t at = 0;
    while (at < body.size()) {
      size_t end = body.find("\n\n", at);
      if (end == std::string::npos) end = body.size();
      std::string block = body.substr(at, end - at);
      at = end + 2;
      std::string name, data;
      size_t line_at = 0;
      while (line_at < block.size()) {
        size_t nl = block.find('\n', line_at);
        if (nl == std::string::npos) nl = block.size();
        std::string line = block.substr(line_at, nl - line_at);
        line_at = nl + 1;
        if (line.rfind("event: ", 0) == 0) name = line.substr(7);
        if (line.rfind("data: ", 0) == 0) data = line.substr(6);
      }
      if (name.empty()) continue;
      auto v = parse(data);
      out.emplace_back(name, v.is_object() ? v.as_object() : boost::json::object{});
    }
    return out;
  }

  static inline HostFixture* f_ = nullptr;
  static inline std::string id_;
  static inline std::string skip_;
};

}  // namespace boxcar::sandboxes
