#include "agent/local/json_reporter.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>

#include "base/rfc3339.h"
#include "base/utf8.h"

namespace boxcar::agent {

namespace {

constexpr size_t kWriteAt = 64 * 1024;
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

void put_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void put_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0, n = s.size();
  while (i < n) {
    size_t run = i;
    while (run < n) {
      unsigned char c = static_cast<unsigned char>(s[run]);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
      ++run;
    }
    out.append(s.data() + i, run - i);
    i = run;
    if (i == n) break;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t len = utf8_sequence(s, i);
      if (len == 0) {
        out.append(kReplacement);
        ++i;
      } else {
        out.append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out.append(esc, 6);
      }
    }
    ++i;
  }
  out.push_back('"');
}

JsonReporter::JsonReporter(std::FILE* out) : out_(out), is_tty_(::isatty(::fileno(out)) == 1) {
  buf_.reserve(kWriteAt + 4096);
}

JsonReporter::~JsonReporter() { flush(); }

void JsonReporter::flush() {
  if (!buf_.empty()) std::fwrite(buf_.data(), 1, buf_.size(), out_);
  buf_.clear();
  std::fflush(out_);
}

void JsonReporter::begin(std::string_view event) {
  buf_.append(R"({"event":")");
  buf_.append(event);
  buf_.push_back('"');
}

// format_rfc3339 once per second; the milliseconds change every line.
void JsonReporter::put_ts(Timestamp ts) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(ts.time_since_epoch()).count();
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  int frac = static_cast<int>(ms % 1000);
  if (frac < 0) {
    frac += 1000;
    --t;
  }
  if (t != clock_second_) {
    std::string whole = format_rfc3339(static_cast<int64_t>(t) * 1000);  // "...T03:00:00.000Z"
    whole.resize(whole.size() - 5);
    std::snprintf(clock_, sizeof clock_, "%s", whole.c_str());
    clock_second_ = t;
  }
  buf_.append(R"(,"ts":")");
  buf_.append(clock_);
  char tail[6] = {'.', char('0' + frac / 100), char('0' + frac / 10 % 10), char('0' + frac % 10),
                  'Z', '"'};
  buf_.append(tail, 6);
}

void JsonReporter::end(bool flush_now) {
  buf_.append("}\n");
  if (flush_now || is_tty_) flush();
  else if (buf_.size() >= kWriteAt) {
    std::fwrite(buf_.data(), 1, buf_.size(), out_);
    buf_.clear();
  }
}

void JsonReporter::remember(size_t step, std::string_view name) {
  if (step >= names_.size()) names_.resize(step + 1);
  if (names_[step] != name) names_[step] = name;
}

void JsonReporter::notice(std::string_view text) {
  begin("notice");
  buf_.append(R"(,"message":)");
  append_json_string(buf_, text);
  put_ts(std::chrono::system_clock::now());
  end(true);
}

void JsonReporter::step_started(size_t step, std::string_view name, int attempt) {
  remember(step, name);
  begin("step_started");
  buf_.append(R"(,"step":)");
  append_json_string(buf_, name);
  buf_.append(R"(,"attempt":)");
  put_int(buf_, attempt);
  put_ts(std::chrono::system_clock::now());
  end(true);
}

void JsonReporter::step_line(size_t /*step*/, std::string_view name, Timestamp ts,
                             std::string_view line, bool cut) {
  begin("log");
  buf_.append(R"(,"step":)");
  append_json_string(buf_, name);
  put_ts(ts);
  buf_.append(R"(,"line":)");
  append_json_string(buf_, line);
  buf_.append(cut ? R"(,"cut":true)" : R"(,"cut":false)");
  end(false);
}

void JsonReporter::step_fields(const StepSummary& s) {
  buf_.append(R"("step":)");
  append_json_string(buf_, s.name);
  buf_.append(R"(,"status":")");
  buf_.append(pipeline::to_string(s.state));
  buf_.append(R"(","duration_ms":)");
  put_int(buf_, s.duration.count());
  buf_.append(R"(,"exit_code":)");
  if (s.exit_code < 0) buf_.append("null");
  else put_int(buf_, s.exit_code);
  buf_.append(R"(,"reason":)");
  append_json_string(buf_, s.reason);
  buf_.append(R"(,"attempts":)");
  put_int(buf_, s.attempts);
  buf_.append(s.allow_failure ? R"(,"allow_failure":true)" : R"(,"allow_failure":false)");
  if (!s.shell.empty()) {
    buf_.append(R"(,"shell":)");
    append_json_string(buf_, s.shell);
  }
}

void JsonReporter::step_finished(size_t step, const StepSummary& summary) {
  remember(step, summary.name);
  begin("step_finished");
  buf_.push_back(',');
  step_fields(summary);
  put_ts(std::chrono::system_clock::now());
  end(true);
}

void JsonReporter::artifact(size_t step, std::string_view name, std::string_view path,
                            uint64_t bytes) {
  begin("artifact");
  buf_.append(R"(,"step":)");
  append_json_string(buf_, step < names_.size() ? std::string_view(names_[step]) : "");
  buf_.append(R"(,"name":)");
  append_json_string(buf_, name);
  buf_.append(R"(,"path":)");
  append_json_string(buf_, path);
  buf_.append(R"(,"bytes":)");
  put_uint(buf_, bytes);
  put_ts(std::chrono::system_clock::now());
  end(true);
}

void JsonReporter::preview(size_t step, std::string_view name, std::string_view url,
                           std::string_view path_url, Timestamp until) {
  begin("preview");
  buf_.append(R"(,"step":)");
  append_json_string(buf_, step < names_.size() ? std::string_view(names_[step]) : "");
  buf_.append(R"(,"name":)");
  append_json_string(buf_, name);
  buf_.append(R"(,"url":)");
  append_json_string(buf_, url);
  buf_.append(R"(,"path_url":)");
  append_json_string(buf_, path_url);
  buf_.append(R"(,"until":)");
  if (until == Timestamp{}) buf_.append("null");
  else append_json_string(buf_, format_rfc3339(until));
  put_ts(std::chrono::system_clock::now());
  end(true);
}

void JsonReporter::pipeline_finished(bool success, const std::vector<StepSummary>& steps,
                                     Millis duration) {
  begin("pipeline_finished");
  buf_.append(success ? R"(,"status":"success")" : R"(,"status":"failed")");
  buf_.append(R"(,"duration_ms":)");
  put_int(buf_, duration.count());
  buf_.append(R"(,"steps":[)");
  for (size_t i = 0; i < steps.size(); ++i) {
    if (i > 0) buf_.push_back(',');
    buf_.push_back('{');
    step_fields(steps[i]);
    buf_.push_back('}');
  }
  buf_.push_back(']');
  put_ts(std::chrono::system_clock::now());
  end(true);
}

}  // namespace boxcar::agent
