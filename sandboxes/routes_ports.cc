// The port routes of the sandbox API (SANDBOXES.md §2.7): POST /ports {port, name?} publishes a
// port through the agent's preview proxy (201, or 200 when already exposed), GET /ports lists
// them, DELETE /ports/{port} withdraws one (204; its URLs answer 404 from then on). Without a
// preview proxy (SandboxHostOptions::publish_port unset) every route answers 501 unsupported.
#include <poll.h>
#include <sys/socket.h>

#include <boost/json.hpp>

#include "protocol/json_reader.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/sandbox_host.h"

namespace boxcar::sandboxes {

namespace {

namespace json = boost::json;
using server::HttpRequest;
using server::HttpResponse;
using Reply = std::shared_ptr<server::Responder>;

constexpr const char* kPorts = "/api/v1/sandboxes/{id}/ports";

// `listening`: something accepts connections on the port inside the sandbox now.
// On loopback the answer to the SYN comes at once (connect() mostly completes before it returns;
// see Sandbox::connect_tcp). Never waited for: this runs on the agent's one thread, and a
// listener whose queue is full (a sandbox that never accepts) must not stall it.
bool listening(ApiSandbox& sb, uint16_t port) {
  auto conn = sb.sandbox().connect_tcp(port);
  if (!conn) return false;
  pollfd p{conn->get(), POLLOUT, 0};
  if (::poll(&p, 1, 0) != 1) return false;
  int err = 0;
  socklen_t len = sizeof err;
  return ::getsockopt(conn->get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}

json::object port_json(const protocol::SandboxPort& p, ApiSandbox& sb) {
  return json::object{{"port", p.port},         {"name", p.name},   {"url", p.url},
                      {"path_url", p.path_url}, {"token", p.token}, {"listening", listening(sb, static_cast<uint16_t>(p.port))}};
}

// The sandbox, with a preview proxy to publish through; null when answered.
ApiSandbox* ports_sandbox(SandboxHost& host, HttpRequest& req, Reply& res) {
  const auto& options = host.options();
  if (!options.publish_port || !options.withdraw_port) {
    res->reply(HttpResponse::error_code(501, "unsupported", "this agent has no preview proxy: ports cannot be exposed "
                                                            "(start it with a preview listener, see docs/sandboxes.md)"));
    return nullptr;
  }
  HttpResponse error;
  ApiSandbox* sb = host.resolve(req, error);
  if (!sb) res->reply(std::move(error));
  return sb;
}

// A port number 1-65535 from text (a path segment), or 0.
uint16_t port_number(const std::string& text) {
  if (text.empty() || text.size() > 5) return 0;
  unsigned v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v >= 1 && v <= 65535 ? static_cast<uint16_t>(v) : 0;
}

// The exposures on disk beside meta.json, so a restarted agent publishes them again (same URLs).
void keep_ports(SandboxHost& host, ApiSandbox& sb) {
  if (Status s = sb.ports().save(sb.dir() / "ports.json"); !s && host.options().log) {
    host.options().log("sandbox " + sb.id() + ": cannot keep its ports: " + s.error().message);
  }
}

}  // namespace

void add_port_routes(server::Router& router, SandboxHost& host) {
  using server::http::verb;
  const std::string ports = kPorts;

  router.add(verb::post, ports, [&host](HttpRequest& req, Reply res) {
    ApiSandbox* sb = ports_sandbox(host, req, res);
    if (!sb) return;
    auto v = protocol::parse_json(req.body());
    if (!v || !v->is_object()) {
      return res->reply(HttpResponse::error_code(400, "bad_request", "the body must be a JSON object like {\"port\": 8000}"));
    }
    int64_t port = 0;
    std::string name;
    protocol::JsonReader r(*v);
    r.known({"port", "name"}).required("port", port).optional("name", name);
    if (!r.ok()) return res->reply(HttpResponse::error_code(400, "bad_request", r.error().message, r.error_field()));
    if (port < 1 || port > 65535) {
      return res->reply(HttpResponse::error_code(400, "bad_request", "port " + std::to_string(port) + ": expected 1 to 65535", "port"));
    }
    if (name.size() > 64) return res->reply(HttpResponse::error_code(400, "bad_request", "name: at most 64 bytes", "name"));
    const auto p = static_cast<uint16_t>(port);
    if (const auto* known = sb->ports().find(p)) {
      protocol::SandboxPort again = *known;
      if (!name.empty() && name != again.name) {
        again.name = name;
        sb->ports().add(again);
        keep_ports(host, *sb);
      }
      return res->reply(HttpResponse::json(200, port_json(again, *sb)));
    }
    if (sb->ports().size() >= PortTable::kMaxPorts) {
      return res->reply(HttpResponse::error_code(429, "limit_reached", "this sandbox exposes " + std::to_string(PortTable::kMaxPorts) +
                                                                           " ports already: DELETE /ports/{port} one first"));
    }
    protocol::SandboxPort published = host.options().publish_port(sb->sandbox(), sb->id(), p, "");
    published.port = p;
    published.name = name;
    sb->ports().add(published);
    keep_ports(host, *sb);
    sb->events().publish("port", json::object{{"port", p}, {"action", "exposed"}});
    if (host.options().on_change) host.options().on_change();
    res->reply(HttpResponse::json(201, port_json(published, *sb)));
  });

  router.add(verb::get, ports, [&host](HttpRequest& req, Reply res) {
    ApiSandbox* sb = ports_sandbox(host, req, res);
    if (!sb) return;
    json::array list;
    for (const auto& p : sb->ports().list()) list.push_back(port_json(p, *sb));
    res->reply(HttpResponse::json(200, json::object{{"ports", std::move(list)}}));
  });

  router.add(verb::delete_, ports + "/{port}", [&host](HttpRequest& req, Reply res) {
    ApiSandbox* sb = ports_sandbox(host, req, res);
    if (!sb) return;
    uint16_t p = port_number(req.params["port"]);
    if (p == 0) {
      return res->reply(HttpResponse::error_code(400, "bad_request", "port \"" + req.params["port"] + "\": expected 1 to 65535", "port"));
    }
    if (!sb->ports().find(p)) {
      return res->reply(HttpResponse::error_code(404, "not_found", "port " + std::to_string(p) + " is not exposed (GET /ports lists them)"));
    }
    host.options().withdraw_port(sb->sandbox(), p);
    sb->ports().remove(p);
    keep_ports(host, *sb);
    sb->events().publish("port", json::object{{"port", p}, {"action", "unexposed"}});
    if (host.options().on_change) host.options().on_change();
    res->reply(HttpResponse::text(204, ""));
  });
}

}  // namespace boxcar::sandboxes
