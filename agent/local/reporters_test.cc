#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <regex>

#include "agent/local/json_reporter.h"
#include "agent/local/terminal_reporter.h"

namespace boxcar::agent {
namespace {

using pipeline::StepState;

// A temporary FILE* whose contents can be read back.
class Capture {
 public:
  Capture() : f_(std::tmpfile()) {}
  ~Capture() { std::fclose(f_); }
  std::FILE* file() { return f_; }
  std::string text() {
    std::fflush(f_);
    std::string out;
    std::rewind(f_);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f_)) > 0) out.append(buf, n);
    std::fseek(f_, 0, SEEK_END);
    return out;
  }

 private:
  std::FILE* f_;
};

StepSummary summary(std::string name, StepState state, int64_t ms, std::string reason,
                    int exit_code, int attempts, bool allow_failure = false) {
  StepSummary s;
  s.name = std::move(name);
  s.state = state;
  s.duration = Millis(ms);
  s.reason = std::move(reason);
  s.exit_code = exit_code;
  s.attempts = attempts;
  s.allow_failure = allow_failure;
  return s;
}

std::vector<StepSummary> sample_steps() {
  return {summary("build", StepState::success, 1200, "", 0, 1),
          summary("test", StepState::failed, 3000, "exit code 2", 2, 2),
          summary("lint", StepState::failed, 500, "exit code 1", 1, 1, true),
          summary("deploy", StepState::skipped, 0, "needs \"test\" failed", -1, 0)};
}

Timestamp at(int64_t unix_ms) { return Timestamp(std::chrono::milliseconds(unix_ms)); }

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) ::setenv(name_, old_.c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(TerminalReporterTest, ExactTextWithoutColor) {
  Capture cap;
  {
    TerminalReporter r(cap.file(), {.color = false, .timestamps = false});
    r.step_started(0, "build", 1);
    r.step_line(0, "build", at(0), "compiling", false);
    r.step_line(1, "test", at(0), "piece", true);
    r.step_started(1, "test", 2);
    r.notice("retrying");
    r.step_finished(0, sample_steps()[0]);
    r.step_finished(1, sample_steps()[1]);
    r.step_finished(2, sample_steps()[2]);
    r.step_finished(3, sample_steps()[3]);
    r.artifact(0, "build/app", "/runs/1/artifacts/build/app", 2048);
    r.pipeline_finished(false, sample_steps(), Millis(4200));
  }
  EXPECT_EQ(cap.text(),
            "[build] started\n"
            "[build] compiling\n"
            "[test] piece\n"
            "[test] started (attempt 2)\n"
            "boxcar: retrying\n"
            "[build] success in 1.2s\n"
            "[test] failed in 3.0s: exit code 2\n"
            "[lint] failed (allowed) in 500ms: exit code 1\n"
            "[deploy] skipped: needs \"test\" failed\n"
            "[build] artifact build/app (2.0 KiB)\n"
            "\n"
            "STEP    STATUS            DURATION  REASON\n"
            "build   success           1.2s\n"
            "test    failed            3.0s      exit code 2\n"
            "lint    failed (allowed)  500ms     exit code 1\n"
            "deploy  skipped           -         needs \"test\" failed\n"
            "pipeline failed in 4.2s\n");
}

TEST(TerminalReporterTest, SucceededPipeline) {
  Capture cap;
  TerminalReporter r(cap.file(), {});
  r.pipeline_finished(true, {sample_steps()[0]}, Millis(850));
  EXPECT_EQ(cap.text(),
            "\n"
            "STEP   STATUS   DURATION  REASON\n"
            "build  success  1.2s\n"
            "pipeline succeeded in 850ms\n");
}

TEST(TerminalReporterTest, ColorAddsEscapesPerStepAndStatus) {
  Capture cap;
  TerminalReporter r(cap.file(), {.color = true, .timestamps = false});
  r.step_line(0, "build", at(0), "a", false);
  r.step_line(1, "test", at(0), "b", false);
  r.pipeline_finished(true, sample_steps(), Millis(1));
  std::string text = cap.text();
  EXPECT_NE(text.find("\x1b[36m[build]\x1b[0m a\n"), std::string::npos);
  EXPECT_NE(text.find("\x1b[35m[test]\x1b[0m b\n"), std::string::npos);
  EXPECT_NE(text.find("\x1b[32msuccess\x1b[0m"), std::string::npos);
  EXPECT_NE(text.find("\x1b[31mfailed\x1b[0m"), std::string::npos);
  EXPECT_NE(text.find("\x1b[33mfailed (allowed)\x1b[0m"), std::string::npos);
  EXPECT_NE(text.find("\x1b[33mskipped\x1b[0m"), std::string::npos);
}

TEST(TerminalReporterTest, NoEscapesWithoutColor) {
  Capture cap;
  {
    TerminalReporter r(cap.file(), {.color = false, .timestamps = true});
    r.step_started(0, "build", 1);
    r.step_line(0, "build", at(0), "a", false);
    r.step_finished(1, sample_steps()[1]);
    r.pipeline_finished(false, sample_steps(), Millis(1));
  }
  EXPECT_EQ(cap.text().find('\x1b'), std::string::npos);
}

TEST(TerminalReporterTest, TimestampsPrefixLocalTime) {
  Capture cap;
  TerminalReporter r(cap.file(), {.color = false, .timestamps = true});
  r.step_line(0, "build", std::chrono::system_clock::now(), "a", false);
  r.flush();
  EXPECT_TRUE(std::regex_match(cap.text(), std::regex(R"(\d\d:\d\d:\d\d \[build\] a\n)")))
      << cap.text();
}

TEST(TerminalReporterTest, LinesAreBufferedUntilAStepEvent) {
  Capture cap;
  TerminalReporter r(cap.file(), {});
  r.step_line(0, "build", at(0), "a", false);
  EXPECT_EQ(cap.text(), "");
  r.step_finished(0, sample_steps()[0]);
  EXPECT_EQ(cap.text(), "[build] a\n[build] success in 1.2s\n");
}

TEST(TerminalReporterTest, WantColorOnlyOnATerminalWithoutNoColor) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ScopedEnv term("TERM", "xterm");
  {
    ScopedEnv no_color("NO_COLOR", nullptr);
    EXPECT_FALSE(TerminalReporter::want_color(fds[1]));
  }
  ::close(fds[0]);
  ::close(fds[1]);

  int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) {
    GTEST_SKIP() << "no pseudo-terminals here";
  }
  int tty = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(tty, 0);
  {
    ScopedEnv no_color("NO_COLOR", nullptr);
    EXPECT_TRUE(TerminalReporter::want_color(tty));
  }
  {
    ScopedEnv no_color("NO_COLOR", "");  // set but empty does not count
    EXPECT_TRUE(TerminalReporter::want_color(tty));
  }
  {
    ScopedEnv no_color("NO_COLOR", "1");
    EXPECT_FALSE(TerminalReporter::want_color(tty));
  }
  ::close(tty);
  ::close(master);
}

std::vector<boost::json::object> json_lines(const std::string& text) {
  std::vector<boost::json::object> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    EXPECT_NE(nl, std::string::npos) << "unterminated line";
    if (nl == std::string::npos) break;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(text.substr(pos, nl - pos), ec);
    EXPECT_FALSE(ec) << ec.message() << ": " << text.substr(pos, nl - pos);
    if (!ec) out.push_back(v.as_object());
    pos = nl + 1;
  }
  return out;
}

TEST(JsonReporterTest, OneParsableObjectPerEvent) {
  Capture cap;
  {
    JsonReporter r(cap.file());
    r.step_started(0, "build", 1);
    r.step_line(0, "build", at(1767322800123), "hello \"world\"", false);
    r.step_finished(0, sample_steps()[0]);
    r.step_finished(3, sample_steps()[3]);
    r.artifact(0, "build/app", "/runs/1/build/app", 12345);
    r.notice("note");
    r.pipeline_finished(false, sample_steps(), Millis(4200));
  }
  auto events = json_lines(cap.text());
  ASSERT_EQ(events.size(), 7u);

  EXPECT_EQ(events[0].at("event"), "step_started");
  EXPECT_EQ(events[0].at("step"), "build");
  EXPECT_EQ(events[0].at("attempt"), 1);
  EXPECT_TRUE(std::regex_match(std::string(events[0].at("ts").as_string()),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));

  EXPECT_EQ(events[1].at("event"), "log");
  EXPECT_EQ(events[1].at("line"), "hello \"world\"");
  EXPECT_EQ(events[1].at("ts"), "2026-01-02T03:00:00.123Z");
  EXPECT_EQ(events[1].at("cut"), false);

  EXPECT_EQ(events[2].at("event"), "step_finished");
  EXPECT_EQ(events[2].at("status"), "success");
  EXPECT_EQ(events[2].at("duration_ms"), 1200);
  EXPECT_EQ(events[2].at("exit_code"), 0);
  EXPECT_EQ(events[2].at("attempts"), 1);
  EXPECT_EQ(events[3].at("status"), "skipped");
  EXPECT_TRUE(events[3].at("exit_code").is_null());
  EXPECT_EQ(events[3].at("reason"), "needs \"test\" failed");

  EXPECT_EQ(events[4].at("event"), "artifact");
  EXPECT_EQ(events[4].at("step"), "build");
  EXPECT_EQ(events[4].at("name"), "build/app");
  EXPECT_EQ(events[4].at("path"), "/runs/1/build/app");
  EXPECT_EQ(events[4].at("bytes"), 12345);

  EXPECT_EQ(events[5].at("event"), "notice");
  EXPECT_EQ(events[5].at("message"), "note");

  EXPECT_EQ(events[6].at("event"), "pipeline_finished");
  EXPECT_EQ(events[6].at("status"), "failed");
  EXPECT_EQ(events[6].at("duration_ms"), 4200);
  const auto& steps = events[6].at("steps").as_array();
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[1].at("step"), "test");
  EXPECT_EQ(steps[1].at("exit_code"), 2);
  EXPECT_EQ(steps[2].at("allow_failure"), true);
}

TEST(JsonReporterTest, EscapesControlCharactersAndRepairsUtf8) {
  std::string line = std::string("tab\there nul") + '\0' + "\x01\x1f\x7f \\ \r\n" +
                     "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" +  // é € 😀: valid, kept
                     " bad:\xff\xc3(\xed\xa0\x80\xc0\xaf\xf4\x90\x80\x80\xe2\x82";
  std::string fffd = "\xef\xbf\xbd";
  std::string expected = std::string("tab\there nul") + '\0' + "\x01\x1f\x7f \\ \r\n" +
                         "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" + " bad:" + fffd + fffd + "(" +
                         fffd + fffd + fffd + fffd + fffd + fffd + fffd + fffd + fffd + fffd +
                         fffd;
  Capture cap;
  {
    JsonReporter r(cap.file());
    r.step_line(0, "build", at(0), line, true);
  }
  std::string text = cap.text();
  EXPECT_NE(text.find(R"(tab\there nul\u0000\u0001\u001f)"), std::string::npos) << text;
  auto events = json_lines(text);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::string(events[0].at("line").as_string()), expected);
  EXPECT_EQ(events[0].at("cut"), true);
  EXPECT_EQ(events[0].at("ts"), "1970-01-01T00:00:00.000Z");
}

TEST(JsonReporterTest, AppendJsonStringRoundTrips) {
  for (std::string s : {std::string(""), std::string("plain"), std::string("\"\\/\b\f\n\r\t"),
                        std::string("\x7f\xc2\x80\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf")}) {
    std::string json;
    append_json_string(json, s);
    EXPECT_EQ(boost::json::parse(json).as_string(), s) << json;
  }
}

}  // namespace
}  // namespace boxcar::agent
