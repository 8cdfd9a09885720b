#include "base/url.h"

#include <cctype>
#include <charconv>

#include <boost/asio/ip/address.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <boost/url/url.hpp>
#include <boost/url/url_view.hpp>

namespace boxcar {

namespace urls = boost::urls;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A URL with a scheme whose path, after an authority, starts with '/'. Boost.URL 1.81 reads
// "http://127.0.0.1.nip.io" as host 127.0.0.1 and path ".nip.io": every caller refuses that
// rather than guess the host.
std::optional<urls::url_view> parse_absolute(std::string_view text) {
  auto parsed = urls::parse_uri(text);
  if (!parsed) return std::nullopt;
  if (parsed->has_authority() && !parsed->encoded_path().empty() &&
      parsed->encoded_path().front() != '/') {
    return std::nullopt;
  }
  return *parsed;
}

// A port as written, in 1..65535. Boost.URL 1.81's port_number() wraps "99999" instead of
// refusing it.
bool valid_port(std::string_view port) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  return ec == std::errc() && end == port.data() + port.size() && value >= 1 && value <= 65535;
}

}  // namespace

Result<ServerUrl> parse_server_url(const std::string& url) {
  auto parsed = urls::parse_uri(url);
  if (!parsed) {
    return Error{"server URL \"" + url + "\" is not a URL (like https://ci.example:8080): " +
                 parsed.error().message()};
  }
  auto checked = parse_absolute(url);
  if (!checked) {
    return Error{"server URL \"" + url + "\" is not a URL (like https://ci.example:8080): "
                 "cannot tell where its host ends"};
  }
  const urls::url_view& u = *checked;
  ServerUrl out;
  std::string scheme;
  if (u.scheme_id() == urls::scheme::https) {
    out.tls = true;
    scheme = "https";
  } else if (u.scheme_id() == urls::scheme::http) {
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
  out.host = u.host_address();
  if (out.host.empty()) return Error{"server URL \"" + url + "\": no host"};
  if (u.has_port()) {
    out.port = std::string(u.port());
    if (!valid_port(out.port)) {
      return Error{"server URL \"" + url + "\": bad port \"" + out.port + "\" (1 to 65535)"};
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
  std::string name = lower(host);
  if (name == "localhost" || name == "localhost.") return true;
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(name, ec);
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

std::optional<std::string> credential_host(std::string_view url) {
  auto u = parse_absolute(url);
  if (!u || u->scheme_id() != urls::scheme::https || u->has_userinfo()) return std::nullopt;
  if (u->host_type() != urls::host_type::name && u->host_type() != urls::host_type::ipv4) {
    return std::nullopt;
  }
  std::string_view host = u->encoded_host();
  if (host.empty() || host.find('%') != std::string_view::npos) return std::nullopt;
  if (u->has_port() && !valid_port(u->port())) return std::nullopt;
  return lower(host);
}

std::string url_host(std::string_view url) {
  auto u = parse_absolute(url);
  return u ? lower(u->host_address()) : "";
}

bool url_has_password(std::string_view url) {
  if (auto u = parse_absolute(url)) return u->has_password();
  size_t scheme = url.find("://");
  return scheme != std::string_view::npos && url.find('@', scheme) != std::string_view::npos;
}

std::string redact_url(const std::string& url) {
  if (auto u = parse_absolute(url)) {
    if (!u->has_userinfo()) return url;
    urls::url copy(*u);
    copy.remove_userinfo();
    return std::string(copy.buffer());
  }
  size_t scheme = url.find("://");
  size_t at = url.rfind('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
  return url.substr(0, scheme + 3) + url.substr(at + 1);
}

std::string percent_encode(std::string_view text, bool keep_slash) {
  if (keep_slash) return urls::encode(text, urls::unreserved_chars + urls::grammar::lut_chars('/'));
  return urls::encode(text, urls::unreserved_chars);
}

}  // namespace boxcar
