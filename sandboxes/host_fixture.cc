#include "sandboxes/host_fixture.h"

#include <stdlib.h>

#include <boost/json.hpp>

#include "base/random_token.h"
#include "executors/native/native_executor.h"
#include "executors/native/sandbox_rename.h"
#include "protocol/json_reader.h"

namespace boxcar::sandboxes {

namespace fs = std::filesystem;
namespace json = boost::json;

Result<std::unique_ptr<HostFixture>> HostFixture::make(SandboxHostOptions options) {
  if (Status s = executors::native_available(); !s) return s.error();
  std::unique_ptr<HostFixture> f(new HostFixture());
  if (options.data_dir.empty()) {
    char tmpl[] = "/tmp/boxcar-sandboxes-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return Error{"mkdtemp failed", errno};
    options.data_dir = tmpl;
    f->own_data_dir_ = true;
  }
  f->data_dir_ = options.data_dir;
  f->options_ = std::move(options);
  if (!f->options_.rename_sandbox) f->options_.rename_sandbox = executors::rename_native_sandbox;
  f->executor_ = executors::make_native_executor(f->io_);
  if (Status s = f->serve(); !s) return s.error();
  return f;
}

void HostFixture::stop_server() {
  client_.reset();
  if (server_) server_->stop();
  // The sessions' close handlers still refer to the server: let them run before it goes.
  io_.restart();
  io_.poll();
  server_.reset();
}

Status HostFixture::serve() {
  stop_server();
  host_.reset();
  host_ = std::make_unique<SandboxHost>(io_, *executor_, options_);
  if (Status s = host_->adopt(); !s) return s;
  router_ = std::make_unique<server::Router>();
  add_lifecycle_routes(*router_, *host_);
  add_exec_routes(*router_, *host_);
  add_file_routes(*router_, *host_);
  add_port_routes(*router_, *host_);
  add_git_routes(*router_, *host_);
  server_ = std::make_unique<server::HttpServer>(io_, *router_);
  auto port = server_->listen("127.0.0.1", 0);
  if (!port) return port.error();
  port_ = *port;
  auto url = parse_server_url("http://127.0.0.1:" + std::to_string(port_));
  if (!url) return url.error();
  HttpClientOptions client_options;
  client_options.max_body = 256ull << 20;
  client_ = std::make_unique<HttpClient>(io_, *url, host_->key(), nullptr, client_options);
  return {};
}

Status HostFixture::restart_host() {
  options_.key = host_->key();  // the server would learn a new one from the sync; tests keep it
  return serve();
}

HostFixture::~HostFixture() {
  stop_server();
  host_.reset();
  io_.restart();
  io_.run_for(std::chrono::milliseconds(50));  // reaps and cgroup removal
  executor_.reset();
  std::error_code ec;
  if (own_data_dir_) fs::remove_all(data_dir_, ec);
}

void HostFixture::run_until(const bool& done) {
  io_.restart();
  while (!done) io_.run_one();
}

void HostFixture::send(const std::string& method, const std::string& path, const std::string& body,
                       std::function<void(HttpReply)> done, const std::string& owner, HttpHeaders headers) {
  if (!owner.empty()) headers.emplace_back(protocol::kOwnerHeader, owner);
  client_->send(method, path, body, body.empty() ? "" : "application/json", kNoTimeout,
                [done = std::move(done)](const boost::system::error_code& ec, HttpReply reply) {
                  if (ec && reply.status == 0) reply.local_error = "no answer: " + ec.message();
                  done(std::move(reply));
                },
                headers);
}

HttpReply HostFixture::call(const std::string& method, const std::string& path, const std::string& body,
                            const std::string& owner, HttpHeaders headers) {
  HttpReply out;
  bool done = false;
  send(method, path, body, [&](HttpReply r) { out = std::move(r); done = true; }, owner, std::move(headers));
  run_until(done);
  return out;
}

HttpReply HostFixture::call_json(const std::string& method, const std::string& path, const json::value& body,
                                 const std::string& owner) {
  return call(method, path, json::serialize(body), owner);
}

std::string HostFixture::new_id() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  auto bytes = random_bytes(12);
  if (!bytes) abort_without_randomness(bytes.error());
  std::string id;
  for (unsigned char c : *bytes) id += kAlphabet[c % 32];
  return id;
}

std::string HostFixture::path(const std::string& id, const std::string& rest) {
  return "/api/v1/sandboxes/" + id + rest;
}

Result<std::string> HostFixture::create_sandbox(const std::string& owner, protocol::SandboxCreate spec) {
  if (spec.id.empty()) spec.id = new_id();
  spec.owner = owner;
  HttpReply r = call_json("POST", "/agent/v1/sandboxes", protocol::to_json(spec), "");
  if (r.status != 201) return Error{"create: " + std::to_string(r.status) + " " + r.body + r.local_error};
  return spec.id;
}

bool HostFixture::remove_sandbox(const std::string& id) {
  return call("DELETE", "/agent/v1/sandboxes/" + id, "", "").status == 204;
}

}  // namespace boxcar::sandboxes
