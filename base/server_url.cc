#include "base/server_url.h"

#include <cctype>

#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

namespace boxcar {

Result<ServerUrl> parse_server_url(const std::string& url) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) {
    return Error{"server URL \"" + url + "\" is not a URL (like https://ci.example:8080): " +
                 parsed.error().message()};
  }
  const boost::urls::url_view& u = *parsed;
  ServerUrl out;
  std::string scheme(u.scheme());
  if (u.scheme_id() == boost::urls::scheme::https) {
    out.tls = true;
    scheme = "https";
  } else if (u.scheme_id() == boost::urls::scheme::http) {
    scheme = "http";
  } else {
    return Error{"server URL \"" + url + "\" must start with https:// or http://"};
  }
  if (u.has_userinfo()) {
    return Error{"server URL " + scheme + "://...: put the token in --token or the environment, "
                 "not in the URL"};
  }
  if (u.has_query() || u.has_fragment()) {
    return Error{"server URL \"" + url + "\" must not have a query or fragment"};
  }
  // After the authority a path starts with "/". Boost.URL 1.81 reads "http://127.0.0.1.nip.io"
  // as host 127.0.0.1 and path ".nip.io": refuse that rather than guess the host.
  if (!u.encoded_path().empty() && u.encoded_path().front() != '/') {
    return Error{"server URL \"" + url + "\" is not a URL (like https://ci.example:8080): "
                 "cannot tell where its host ends"};
  }
  out.host = u.host_address();
  if (out.host.empty()) return Error{"server URL \"" + url + "\": no host"};
  if (u.has_port()) {
    out.port = std::string(u.port());
    if (out.port.empty() || u.port_number() == 0) {
      return Error{"server URL \"" + url + "\": bad port \"" + out.port + "\""};
    }
  } else {
    out.port = out.tls ? "443" : "80";
  }
  out.authority = std::string(u.encoded_host_and_port());
  out.prefix = std::string(u.encoded_path());
  while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  out.text = scheme + "://" + out.authority + out.prefix;
  return out;
}

bool is_loopback_host(std::string_view host) {
  std::string lower(host);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "localhost" || lower == "localhost.") return true;
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(lower, ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6()).is_loopback();
  }
  return address.is_loopback();
}

Status check_token_transport(const ServerUrl& url, std::string_view what) {
  if (url.tls || is_loopback_host(url.host)) return {};
  return Error{"refusing to send the " + std::string(what) + " over plain http to " + url.host +
               ": use https (boxcar serve --tls-cert ...)"};
}

}  // namespace boxcar
