// boxcar logs [-f] JOB [STEP]: a job's log; with -f, follows it live (server-sent events) until
// the job ends, then exits 0 if it succeeded and 1 otherwise.
#include <unistd.h>

#include <boost/json.hpp>

#include <cstdio>
#include <map>
#include <optional>

#include "base/base64.h"
#include "base/terminal_escape.h"
#include "base/url.h"
#include "cli/api_client.h"
#include "cli/api_token.h"
#include "cli/commands.h"
#include "cli/flags.h"

namespace boxcar::cli {
namespace {

// JSON from the server whose strings hold log bytes as they were written: not always UTF-8
// (from servers older than "data_base64").
boost::json::value parse_log_json(std::string_view text, boost::system::error_code& ec) {
  boost::json::parse_options options;
  options.allow_invalid_utf8 = true;
  return boost::json::parse(text, ec, {}, options);
}

// A chunk's bytes: "data_base64" (the exact bytes, sent when they are not UTF-8) or "data".
std::optional<std::string> chunk_data(const boost::json::object& o) {
  if (o.contains("data_base64") && o.at("data_base64").is_string()) {
    if (auto bytes = base64_decode(o.at("data_base64").as_string())) return bytes;
  }
  if (o.contains("data") && o.at("data").is_string()) return std::string(o.at("data").as_string());
  return std::nullopt;
}

// Prints `[step] line` for each line of a step, as `boxcar run` does, so that nothing a step
// prints can pass for a line of boxcar's own: lines of the job itself (checkout, pipeline
// errors), logged under "(job)", print bare. On a terminal, step output is escaped but for its
// colours (base/terminal_escape.h); piped, it keeps its bytes. A chunk that ends inside a line
// (a long line, cut) ends the printed line there; the rest comes labelled again.
class LogPrinter {
 public:
  explicit LogPrinter(bool escape) : escape_(escape) {}

  void print(const std::string& step, std::string_view text) {
    std::string out;
    bool job = step.empty() || step == "(job)";
    TerminalEscaper& e = escapers_[step];
    while (!text.empty()) {
      size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      if (!job) {
        out += '[';
        out += escape_ ? escape_for_terminal(step) : step;
        out += "] ";
      }
      if (escape_) {
        e.feed(line, out);
        if (nl == std::string_view::npos) e.break_line(out);
        else e.end_line(out);
      } else {
        out.append(line);
      }
      out += '\n';
      if (nl == std::string_view::npos) break;
      text.remove_prefix(nl + 1);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
  }

 private:
  bool escape_;
  std::map<std::string, TerminalEscaper> escapers_;
};

// Every chunk from `offset` on, through ?format=json (chunks labelled with their step).
int print_stored(ApiClient& client, const std::string& target, const std::string& query,
                 LogPrinter& printer) {
  int64_t offset = 0;
  while (true) {
    std::string q = "format=json&offset=" + std::to_string(offset) + (query.empty() ? "" : "&" + query);
    auto reply = client.request("GET", target + "?" + q);
    if (!reply) {
      std::fprintf(stderr, "boxcar logs: %s\n", reply.error().message.c_str());
      return kExitInfra;
    }
    if (reply->status != 200) {
      std::fprintf(stderr, "boxcar logs: %s\n", error_text(*reply).c_str());
      return exit_code_of_status(reply->status);
    }
    boost::system::error_code ec;
    auto v = parse_log_json(reply->body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("chunks") ||
        !v.at("chunks").is_array()) {
      std::fprintf(stderr, "boxcar logs: the server's answer is not a log (is it older than this "
                           "boxcar?)\n");
      return kExitInfra;
    }
    for (const auto& c : v.at("chunks").as_array()) {
      if (!c.is_object()) continue;
      const auto& o = c.as_object();
      std::string step = o.contains("step") && o.at("step").is_string() ? std::string(o.at("step").as_string()) : "";
      if (auto data = chunk_data(o)) printer.print(step, *data);
    }
    const auto& o = v.as_object();
    bool more = o.contains("more") && o.at("more").is_bool() && o.at("more").as_bool();
    if (!more || !o.contains("offset") || !o.at("offset").is_int64()) return kExitOk;
    if (o.at("offset").as_int64() <= offset) return kExitOk;
    offset = o.at("offset").as_int64();
  }
}

// Parses server-sent events from arbitrary chunks: `event:` and `data:` lines, blank line ends
// an event.
class EventParser {
 public:
  explicit EventParser(LogPrinter& printer) : printer_(printer) {}

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
    auto v = parse_log_json(data, ec);
    if (ec || !v.is_object()) return true;
    const auto& o = v.as_object();
    if (event == "log") {
      auto bytes = chunk_data(o);
      if (!bytes) return true;
      std::string step = o.contains("step") && o.at("step").is_string() ? std::string(o.at("step").as_string()) : "";
      printer_.print(step, *bytes);
      std::fflush(stdout);
    } else if (event == "end") {
      final_state = o.contains("state") ? std::string(o.at("state").as_string()) : "unknown";
      std::string reason = o.contains("reason") ? std::string(o.at("reason").as_string()) : "";
      std::fprintf(stderr, "boxcar: job %s%s%s\n", escape_for_terminal(final_state).c_str(),
                   reason.empty() ? "" : ": ", escape_for_terminal(reason).c_str());
      return false;
    }
    return true;
  }
  LogPrinter& printer_;
  std::string buf_, event_, data_;
};

}  // namespace

int cmd_logs(const Args& args) {
  auto flags = parse_flags(args, with_api_client_flags({{"--follow", false, false, "-f"},
                                                        {"--help", false, false, "-h"}}));
  if (!flags.ok()) return usage_error("logs", flags.error().message);
  if (flags->has("--help")) {
    std::printf("usage: boxcar logs [--server URL] [--token-file F] [--ca-file PEM] [-f] JOB [STEP]\n%s%s", kApiTokenHelp, kConnectionHelp);
    return kExitOk;
  }
  if (flags->positional.empty() || flags->positional.size() > 2) {
    return usage_error("logs", "needs a JOB id and optionally a STEP name");
  }
  std::string target = "/api/v1/jobs/" + flags->positional[0] + "/logs";
  std::string query;
  if (flags->positional.size() == 2) {
    // Step names may hold spaces and parentheses (matrix expansions).
    query = "step=" + percent_encode(flags->positional[1], false);
  }
  auto client = api_client_for(*flags, "logs");
  if (!client) return usage_error("logs", client.error().message);
  LogPrinter printer(::isatty(STDOUT_FILENO) == 1);
  if (!flags->has("--follow")) return print_stored(*client, target, query, printer);
  EventParser events(printer);
  Status st = client->stream(target + "?follow=1" + (query.empty() ? "" : "&" + query),
                             [&](std::string_view bytes) { return events.feed(bytes); });
  if (!st.ok()) {
    std::fprintf(stderr, "boxcar logs: %s\n", st.error().message.c_str());
    return kExitInfra;
  }
  return events.final_state == "success" ? kExitOk : kExitFailed;
}

}  // namespace boxcar::cli
