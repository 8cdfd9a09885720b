// boxcar logs [-f] JOB [STEP]: a job's log; with -f, follows it live (server-sent events) until
// the job ends, then exits 0 if it succeeded and 1 otherwise.
#include <boost/json.hpp>

#include <cstdio>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/flags.h"

namespace boxcar::cli {
namespace {

// Prints `[step] line` for each line, as `boxcar run` does; lines of the job itself (checkout,
// pipeline errors), logged under "(job)", print bare.
void print_prefixed(const std::string& step, std::string_view text) {
  std::string out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!step.empty() && step != "(job)") out += "[" + step + "] ";
    out.append(line);
    out += '\n';
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

// Parses server-sent events from arbitrary chunks: `event:` and `data:` lines, blank line ends
// an event.
class EventParser {
 public:
  // Returns false to stop reading (the end event arrived).
  bool feed(std::string_view bytes) {
    buf_.append(bytes);
    size_t pos;
    while ((pos = buf_.find('\n')) != std::string::npos) {
      std::string line = buf_.substr(0, pos);
      buf_.erase(0, pos + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) {
        if (!dispatch()) return false;
      } else if (line.rfind("event:", 0) == 0) {
        event_ = trim(line.substr(6));
      } else if (line.rfind("data:", 0) == 0) {
        data_ += trim(line.substr(5));
      }
    }
    return true;
  }
  std::string final_state;

 private:
  static std::string trim(std::string s) {
    if (!s.empty() && s[0] == ' ') s.erase(0, 1);
    return s;
  }
  bool dispatch() {
    std::string event = std::move(event_), data = std::move(data_);
    event_.clear();
    data_.clear();
    if (data.empty()) return true;
    boost::system::error_code ec;
    auto v = boost::json::parse(data, ec);
    if (ec || !v.is_object()) return true;
    const auto& o = v.as_object();
    if (event == "log" && o.contains("data")) {
      std::string step = o.contains("step") ? std::string(o.at("step").as_string()) : "";
      print_prefixed(step, o.at("data").as_string());
      std::fflush(stdout);
    } else if (event == "end") {
      final_state = o.contains("state") ? std::string(o.at("state").as_string()) : "unknown";
      std::string reason = o.contains("reason") ? std::string(o.at("reason").as_string()) : "";
      std::fprintf(stderr, "boxcar: job %s%s%s\n", final_state.c_str(),
                   reason.empty() ? "" : ": ", reason.c_str());
      return false;
    }
    return true;
  }
  std::string buf_, event_, data_;
};

}  // namespace

int cmd_logs(const Args& args) {
  auto flags = parse_flags(args, {{"--server", true, false, ""},
                                  {"--ca-file", true, false, ""},
                                  {"--follow", false, false, "-f"},
                                  {"--help", false, false, "-h"}});
  if (!flags.ok()) return usage_error("logs", flags.error().message);
  if (flags->has("--help")) {
    std::printf("usage: boxcar logs [--server URL] [--ca-file PEM] [-f] JOB [STEP]\n");
    std::fputs(kConnectionHelp, stdout);
    return kExitOk;
  }
  if (flags->positional.empty() || flags->positional.size() > 2) {
    return usage_error("logs", "needs a JOB id and optionally a STEP name");
  }
  std::string target = "/api/v1/jobs/" + flags->positional[0] + "/logs";
  std::string query;
  if (flags->positional.size() == 2) {
    // Step names may hold spaces and parentheses (matrix expansions).
    std::string step;
    for (unsigned char c : flags->positional[1]) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
        step += static_cast<char>(c);
      } else {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", c);
        step += hex;
      }
    }
    query = "step=" + step;
  }
  auto client = ApiClient::create(server_url(flags->get("--server")), client_options(*flags));
  if (!client) return usage_error("logs", client.error().message);
  if (!flags->has("--follow")) {
    auto reply = client->request("GET", target + (query.empty() ? "" : "?" + query));
    if (!reply) {
      std::fprintf(stderr, "boxcar logs: %s\n", reply.error().message.c_str());
      return kExitInfra;
    }
    if (reply->status != 200) {
      std::fprintf(stderr, "boxcar logs: %s\n", error_text(*reply).c_str());
      return reply->status >= 500 ? kExitInfra : kExitUsage;
    }
    std::fwrite(reply->body.data(), 1, reply->body.size(), stdout);
    return kExitOk;
  }
  EventParser events;
  Status st = client->stream(target + "?follow=1" + (query.empty() ? "" : "&" + query),
                             [&](std::string_view bytes) { return events.feed(bytes); });
  if (!st.ok()) {
    std::fprintf(stderr, "boxcar logs: %s\n", st.error().message.c_str());
    return kExitInfra;
  }
  return events.final_state == "success" ? kExitOk : kExitFailed;
}

}  // namespace boxcar::cli
