// boxcar logs [-f] [--timestamps] JOB [STEP]: a job's log, each step's lines labelled `[step] `
// as `boxcar run` labels them (coloured on a terminal); with STEP only that step's (a matrix
// step's base name: every cell of it); with -f, follows it live (server-sent events) until the
// job ends, then exits 0 if it succeeded and 1 otherwise.
#include <unistd.h>

#include <boost/json.hpp>

#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <variant>
#include <vector>

#include "agent/local/step_label.h"
#include "agent/local/terminal_reporter.h"
#include "base/base64.h"
#include "base/suggest.h"
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

// Prints `[step] line` for each line of a step, as `boxcar run` does (agent/local/step_label.h:
// the same label, in the same colours when `color`), so that nothing a step prints can pass for a
// line of boxcar's own: lines of the job itself (checkout, pipeline errors, the server's notes),
// logged under "(job)", print bare. On a terminal, step output is escaped but for its colours
// (base/terminal_escape.h); piped, it keeps its bytes. A chunk that ends inside a line (a long
// line, cut) ends the printed line there; the rest comes labelled again. Steps get their colours
// in the order the job lists them (the order they started), then in the order they appear.
class LogPrinter {
 public:
  struct Options {
    bool escape = false;      // stdout is a terminal
    bool color = false;       // ... and colours are wanted (TerminalReporter::want_color)
    bool timestamps = false;  // each line starts with its chunk's time (RFC 3339)
    std::vector<std::string> steps;  // the job's steps, in its order
    std::set<std::string> only;      // non-empty: print only these steps' lines
  };
  explicit LogPrinter(Options options) : o_(std::move(options)) {
    for (const auto& step : o_.steps) index_of(step);
  }

  void print(const std::string& step, std::string_view text, std::string_view at) {
    bool job = step.empty() || step == "(job)";
    if (!o_.only.empty() && !o_.only.count(step)) return;
    std::string out;
    std::string label = job ? "" : agent::step_label(index_of(step), step, o_.color);
    TerminalEscaper& e = escapers_[step];
    while (!text.empty()) {
      size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      if (o_.timestamps) {
        out += o_.escape ? escape_for_terminal(at) : std::string(at);
        out += ' ';
      }
      out += label;
      if (o_.escape) {
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
  size_t index_of(const std::string& step) {
    return indices_.try_emplace(step, indices_.size()).first->second;
  }

  Options o_;
  std::map<std::string, size_t> indices_;
  std::map<std::string, TerminalEscaper> escapers_;
};

std::string string_field(const boost::json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : "";
}

// GET `target`: its 200 answer, or the exit code after saying on stderr why there was none.
std::variant<ApiReply, int> get_ok(ApiClient& client, const std::string& target) {
  auto reply = client.request("GET", target);
  if (!reply) {
    std::fprintf(stderr, "boxcar logs: %s\n", reply.error().message.c_str());
    return kExitInfra;
  }
  if (reply->status != 200) {
    std::fprintf(stderr, "boxcar logs: %s\n", error_text(*reply).c_str());
    return exit_code_of_status(reply->status);
  }
  return std::move(*reply);
}

// Every chunk from `offset` on, through ?format=json (chunks labelled with their step).
int print_stored(ApiClient& client, const std::string& target, const std::string& query,
                 LogPrinter& printer) {
  int64_t offset = 0;
  while (true) {
    std::string q = "format=json&offset=" + std::to_string(offset) + (query.empty() ? "" : "&" + query);
    auto got = get_ok(client, target + "?" + q);
    if (int* code = std::get_if<int>(&got)) return *code;
    const ApiReply* reply = &std::get<ApiReply>(got);
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
      if (auto data = chunk_data(o)) printer.print(string_field(o, "step"), *data, string_field(o, "at"));
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
      printer_.print(string_field(o, "step"), *bytes, string_field(o, "at"));
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

// The job's steps, in its order, and whether it is final; an exit code once it was said why not.
struct JobSteps {
  std::vector<std::string> names;
  bool final = false;
};
std::variant<JobSteps, int> job_steps(ApiClient& client, const std::string& job) {
  auto got = get_ok(client, "/api/v1/jobs/" + job);
  if (int* code = std::get_if<int>(&got)) return *code;
  const ApiReply* reply = &std::get<ApiReply>(got);
  boost::system::error_code ec;
  auto v = boost::json::parse(reply->body, ec);
  if (ec || !v.is_object()) {
    std::fprintf(stderr, "boxcar logs: the server's answer is not a job\n");
    return kExitInfra;
  }
  JobSteps out;
  std::string state = string_field(v.as_object(), "state");
  out.final = state != "queued" && state != "running";
  if (auto* steps = v.as_object().if_contains("steps"); steps && steps->is_array()) {
    for (const auto& s : steps->as_array()) {
      if (s.is_object()) out.names.push_back(string_field(s.as_object(), "name"));
    }
  }
  return out;
}

// The steps `wanted` names: itself, or every cell of a matrix step ("test" -> "test (cc=gcc)",
// ...). Empty when the job has no such step.
std::set<std::string> steps_named(const std::string& wanted, const std::vector<std::string>& steps) {
  std::set<std::string> out;
  for (const auto& s : steps) {
    if (s == wanted) return {s};
    if (s.rfind(wanted + " (", 0) == 0 && s.back() == ')') out.insert(s);
  }
  return out;
}

}  // namespace

int cmd_logs(const Args& args) {
  auto flags = parse_flags(args, with_api_client_flags({{"--follow", false, false, "-f"},
                                                        {"--timestamps", false, false, ""},
                                                        {"--help", false, false, "-h"}}));
  if (!flags.ok()) return usage_error("logs", flags.error().message);
  if (flags->has("--help")) {
    std::printf(
        "usage: boxcar logs [--server URL] [--token-file F] [--ca-file PEM] [-f] [--timestamps] JOB [STEP]\n"
        "  prints the job's log: each step's lines as `[step] line` (coloured on a terminal,\n"
        "  unless NO_COLOR is set), the job's own lines bare\n"
        "  STEP: only that step's lines (its full name, like \"test (cc=gcc)\"; a matrix step's\n"
        "  name prints every cell of it); a step the finished job does not have exits 2\n"
        "  -f, --follow: follows the log live until the job ends; exits 0 if it succeeded, else 1\n"
        "  --timestamps: each line starts with the time the server received it (RFC 3339, UTC)\n"
        "%s%s", kApiTokenHelp, kConnectionHelp);
    return kExitOk;
  }
  if (flags->positional.empty() || flags->positional.size() > 2) {
    return usage_error("logs", "needs a JOB id and optionally a STEP name");
  }
  const std::string& job = flags->positional[0];
  std::string target = "/api/v1/jobs/" + job + "/logs";
  auto client = api_client_for(*flags, "logs");
  if (!client) return usage_error("logs", client.error().message);
  auto steps = job_steps(*client, job);
  if (auto* code = std::get_if<int>(&steps)) return *code;
  const JobSteps& known = std::get<JobSteps>(steps);

  LogPrinter::Options options;
  options.escape = ::isatty(STDOUT_FILENO) == 1;
  options.color = agent::TerminalReporter::want_color(STDOUT_FILENO);
  options.timestamps = flags->has("--timestamps");
  options.steps = known.names;
  std::string query;
  if (flags->positional.size() == 2) {
    const std::string& wanted = flags->positional[1];
    std::set<std::string> named = steps_named(wanted, known.names);
    // A running job's later steps are not listed yet: only a final job's list is complete.
    if (named.empty() && known.final) {
      auto near = closest_match(wanted, known.names);
      return usage_error("logs", "no step \"" + escape_for_terminal(wanted) + "\" in job " + job +
                                     (near ? " (did you mean \"" + escape_for_terminal(*near) + "\"?)"
                                           : known.names.empty() ? " (it has no steps)" : ""));
    }
    if (named.size() == 1 && *named.begin() == wanted) {
      // Step names may hold spaces and parentheses (matrix expansions).
      query = "step=" + percent_encode(wanted, false);
    } else if (!named.empty()) {
      options.only = std::move(named);  // a matrix step's cells: filtered here
    } else {
      query = "step=" + percent_encode(wanted, false);
    }
  }
  LogPrinter printer(std::move(options));
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
