// A streaming reverse proxy for a route with RouteOptions::take_connection: the request (its
// header checked by the HttpServer, hop-by-hop headers dropped, the caller's own added) goes to
// one upstream over a fresh connection with "Connection: close", its body relayed in 64 KiB
// pieces as it arrives, and the upstream's answer is streamed back as it comes (server-sent
// events flow live). Nothing is held whole, so the memory per exchange stays at two buffers.
// The client connection closes after the exchange (TakenConnection).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/http_server.h"

namespace boxcar::server {

struct ProxyTarget {
  std::string host, port;  // the upstream
  std::string target;      // origin-form path and query sent upstream
  // Client headers not forwarded (case-insensitive), e.g. its Authorization.
  std::vector<std::string> drop;
  // Headers added (after dropping any of the client's with the same names).
  std::vector<std::pair<std::string, std::string>> add;
};

struct ProxyOptions {
  std::chrono::milliseconds connect_timeout{5'000};
  // Each wait for the upstream's header or the next piece of either body.
  std::chrono::milliseconds idle_timeout{600'000};
  // The answer when the upstream cannot be reached or sends no header (e.g. a 503).
  std::function<HttpResponse(const std::string& why)> unreachable;
};

// `request` must come from a take_connection route. Answers through `responder` only when
// nothing came from the upstream; otherwise writes the upstream's answer on the connection.
void reverse_proxy(HttpRequest& request, std::shared_ptr<Responder> responder, ProxyTarget target,
                   ProxyOptions options);

}  // namespace boxcar::server
