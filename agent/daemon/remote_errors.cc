#include "agent/daemon/remote_errors.h"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>

namespace boxcar::agent {

namespace asio = boost::asio;

namespace {

// The table. A request ends either without an HTTP answer (a transport error) or with a
// status. Rows are tried in order; the first that matches decides.
//
//   transport error                   verdict        why
//   connection refused / reset / eof  retry          server restarting or a replica going away
//   timeout (ours or the kernel's)    retry          overloaded server; the request may be re-sent
//   host not found / unreachable      retry          DNS or network blips heal; we log each failure
//   TLS certificate refused, not TLS  retry          a certificate being replaced heals; the
//   (tls_verify_category)                            message says why and names --ca-file
//   any other transport error         retry          never give up on the network alone
//
//   HTTP status                       verdict        why
//   2xx                               ok
//   401, 403                          auth_refused   the server refused the agent token: fatal
//   409                               lease_lost     the job's lease is gone: stop, no complete
//   429                               retry          the server asked us to slow down
//   5xx                               retry          the server's own trouble, usually brief
//   400, 404, other 4xx               rejected       this request is wrong; drop it, log it
//   anything else (1xx, 3xx)          rejected       we never follow redirects
struct StatusRow {
  unsigned lo, hi;
  RemoteVerdict verdict;
  const char* what;
};

constexpr StatusRow kStatusTable[] = {
    {200, 299, RemoteVerdict::ok, "ok"},
    {401, 401, RemoteVerdict::auth_refused, "the server refused the agent token"},
    {403, 403, RemoteVerdict::auth_refused, "the server refused the agent token"},
    {409, 409, RemoteVerdict::lease_lost, "the job's lease is lost"},
    {429, 429, RemoteVerdict::retry, "the server is busy (429)"},
    {500, 599, RemoteVerdict::retry, "server error"},
    {400, 499, RemoteVerdict::rejected, "request rejected"},
    {0, 999, RemoteVerdict::rejected, "unexpected answer"},
};

struct TransportRow {
  boost::system::error_code code;
  const char* what;
};

const TransportRow kTransportTable[] = {
    {asio::error::connection_refused, "connection refused"},
    {asio::error::connection_reset, "connection reset"},
    {asio::error::connection_aborted, "connection aborted"},
    {asio::error::broken_pipe, "connection closed"},
    {asio::error::eof, "the server closed the connection"},
    {boost::beast::http::error::end_of_stream, "the server closed the connection"},
    {boost::beast::error::timeout, "timed out"},
    {asio::error::timed_out, "timed out"},
    {asio::error::host_not_found, "host not found"},
    {asio::error::host_not_found_try_again, "host not found"},
    {asio::error::network_unreachable, "network unreachable"},
    {asio::error::host_unreachable, "host unreachable"},
};

std::string body_start(const std::string& body) {
  std::string s = body.substr(0, 200);
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

}  // namespace

RemoteOutcome classify(const boost::system::error_code& ec, unsigned status,
                       const std::string& body) {
  if (ec) {
    for (const auto& row : kTransportTable) {
      if (ec == row.code) return {RemoteVerdict::retry, row.what};
    }
    return {RemoteVerdict::retry, ec.message()};
  }
  for (const auto& row : kStatusTable) {
    if (status < row.lo || status > row.hi) continue;
    if (row.verdict == RemoteVerdict::ok) return {RemoteVerdict::ok, ""};
    std::string msg = std::string(row.what) + " (HTTP " + std::to_string(status) + ")";
    if (!body.empty()) msg += ": " + body_start(body);
    return {row.verdict, msg};
  }
  return {RemoteVerdict::rejected, "HTTP " + std::to_string(status)};
}

const char* to_string(RemoteVerdict v) {
  switch (v) {
    case RemoteVerdict::ok: return "ok";
    case RemoteVerdict::retry: return "retry";
    case RemoteVerdict::auth_refused: return "auth_refused";
    case RemoteVerdict::lease_lost: return "lease_lost";
    case RemoteVerdict::rejected: return "rejected";
  }
  return "?";
}

Backoff::Backoff(Millis initial, Millis cap)
    : initial_(initial), cap_(cap), rng_(std::random_device{}()) {}

Millis Backoff::next() {
  int64_t d = initial_.count();
  for (int i = 0; i < failures_ && d < cap_.count(); ++i) d *= 2;
  d = std::min<int64_t>(d, cap_.count());
  ++failures_;
  std::uniform_int_distribution<int64_t> dist(d / 2, d);
  return Millis(dist(rng_));
}

void Backoff::reset() { failures_ = 0; }

}  // namespace boxcar::agent
