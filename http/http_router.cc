// Router, HttpRequest and HttpResponse: the parts of http_server.h that do no I/O.
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include "http/http_server.h"

namespace boxcar::server {

namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool is_capture(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

bool is_rest_capture(const std::string& segment) {
  return is_capture(segment) && segment.size() > 5 &&
         segment.compare(segment.size() - 4, 4, "...}") == 0;
}

// The path after its first `n` segments and the one slash that follows them, verbatim: a
// catch-all keeps doubled or leading slashes, so its handler can refuse them.
std::string path_after(std::string_view path, size_t n) {
  size_t i = 0;
  for (size_t seen = 0; seen < n; ++seen) {
    while (i < path.size() && path[i] == '/') ++i;
    while (i < path.size() && path[i] != '/') ++i;
  }
  if (i < path.size() && path[i] == '/') ++i;
  return std::string(path.substr(i));
}

}  // namespace

std::string HttpRequest::header(std::string_view name) const {
  auto it = raw.find(boost::beast::string_view(name.data(), name.size()));
  return it == raw.end() ? std::string() : std::string(it->value());
}

std::string HttpRequest::query_or(const std::string& key, const std::string& fallback) const {
  auto it = query.find(key);
  return it == query.end() ? fallback : it->second;
}

HttpResponse HttpResponse::json(unsigned status, const boost::json::value& body) {
  HttpResponse r;
  r.status = status;
  r.body = boost::json::serialize(body);
  r.body += '\n';
  return r;
}

HttpResponse HttpResponse::error(unsigned status, std::string_view message) {
  return json(status, boost::json::object{{"error", message}});
}

HttpResponse HttpResponse::error_code(unsigned status, std::string_view code, std::string_view message,
                                      std::string_view field) {
  boost::json::object body{{"error", message}, {"code", code}};
  if (!field.empty()) body["field"] = field;
  return json(status, body);
}

HttpResponse HttpResponse::text(unsigned status, std::string body, std::string content_type) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

void Router::guard(std::function<std::optional<HttpResponse>(const HttpRequest& head)> check) {
  guard_ = std::move(check);
}

void Router::add(http::verb method, std::string_view pattern, Handler handler,
                 RouteOptions options) {
  if (guard_) {
    options.admit = [guard = guard_, own = std::move(options.admit)](
                        const HttpRequest& head) -> std::optional<HttpResponse> {
      if (auto refused = guard(head)) return refused;
      return own ? own(head) : std::nullopt;
    };
  }
  routes_.push_back(Route{method, split_path(pattern), std::move(handler), std::move(options)});
}

Router::Match Router::match(http::verb method, std::string_view path) const {
  Match result;
  result.status = 404;
  std::vector<std::string> parts = split_path(path);
  for (const Route& route : routes_) {
    bool rest = !route.segments.empty() && is_rest_capture(route.segments.back());
    if (rest ? parts.size() < route.segments.size() : route.segments.size() != parts.size()) continue;
    std::map<std::string, std::string> params;
    bool same = true;
    for (size_t i = 0; i < route.segments.size() && same; ++i) {
      const std::string& seg = route.segments[i];
      if (rest && i + 1 == route.segments.size()) {
        params[seg.substr(1, seg.size() - 5)] = path_after(path, i);
      } else if (is_capture(seg)) {
        params[seg.substr(1, seg.size() - 2)] = parts[i];
      } else {
        same = seg == parts[i];
      }
    }
    if (!same) continue;
    if (route.method != method) {
      result.status = 405;
      std::string name(http::to_string(route.method));
      if (result.allow.find(name) == std::string::npos) {
        result.allow += (result.allow.empty() ? "" : ", ") + name;
      }
      continue;
    }
    result.route = &route;
    result.params = std::move(params);
    result.status = 200;
    result.allow.clear();
    return result;
  }
  return result;
}

// Splits a request target into its decoded path and query; false if it is not a valid
// origin-form target ("/path?query").
bool parse_target(std::string_view target, std::string& path,
                  std::map<std::string, std::string>& query) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return false;
  path = std::string(url->path());
  for (auto param : url->params()) query[std::string(param.key)] = std::string(param.value);
  return true;
}

}  // namespace boxcar::server
