// HostFixture: a SandboxHost serving its data plane for tests: the native executor, the host on a
// temporary data directory, and a real HttpServer on 127.0.0.1:0 with every add_*_routes, called
// over real HTTP (http/http_client.h) with the data-plane key and an X-Boxcar-Owner. Everything
// runs on one io_context, driven by the calls themselves (call() runs it until its answer).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/json/value.hpp>

#include "base/result.h"
#include "executors/executor.h"
#include "http/http_client.h"
#include "http/http_server.h"
#include "protocol/sandbox_api.h"
#include "sandboxes/sandbox_host.h"

namespace boxcar::sandboxes {

class HostFixture {
 public:
  // An Error when this host cannot make native sandboxes (the caller skips its tests).
  // `options` keeps its callbacks; data_dir is a fresh temporary directory when empty.
  static Result<std::unique_ptr<HostFixture>> make(SandboxHostOptions options = {});
  ~HostFixture();

  // A request with the data-plane key and `owner` (empty: no owner header), answered in full.
  HttpReply call(const std::string& method, const std::string& path, const std::string& body = "",
                 const std::string& owner = "alice", HttpHeaders headers = {});
  // call() with a JSON body, and the answer parsed (null when it is not JSON).
  HttpReply call_json(const std::string& method, const std::string& path, const boost::json::value& body,
                      const std::string& owner = "alice");
  // Sends without waiting: `done` runs on the io_context (drive it with run_until).
  void send(const std::string& method, const std::string& path, const std::string& body,
            std::function<void(HttpReply)> done, const std::string& owner = "alice", HttpHeaders headers = {});
  void run_until(const bool& done);

  // Creates a sandbox through POST /agent/v1/sandboxes: its id.
  Result<std::string> create_sandbox(const std::string& owner = "alice", protocol::SandboxCreate spec = {});
  bool remove_sandbox(const std::string& id);
  // "/api/v1/sandboxes/<id>" + rest.
  static std::string path(const std::string& id, const std::string& rest = "");
  static std::string new_id();

  boost::asio::io_context& io() { return io_; }
  SandboxHost& host() { return *host_; }
  executors::Executor& executor() { return *executor_; }
  uint16_t port() const { return port_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }

  // A second SandboxHost on the same data directory (the first is shut down): an agent restart.
  Status restart_host();

 private:
  HostFixture() = default;
  boost::asio::io_context io_;
  std::filesystem::path data_dir_;
  bool own_data_dir_ = false;
  SandboxHostOptions options_;
  std::unique_ptr<executors::Executor> executor_;
  std::unique_ptr<SandboxHost> host_;
  std::unique_ptr<server::Router> router_;
  std::unique_ptr<server::HttpServer> server_;
  uint16_t port_ = 0;
  std::unique_ptr<HttpClient> client_;

  Status serve();
  void stop_server();
};

}  // namespace boxcar::sandboxes
