// Step output against the user's terminal: `boxcar run`, `boxcar logs` and `boxcar logs -f` run
// under a real pseudo-terminal while a step prints OSC 52 (clipboard), OSC 8 (a link), a title
// change, a screen clear, cursor movement, a '\r' over its own label and a forged `[deploy] ok`
// line. Only its SGR colour may reach the terminal as bytes; the controls show the stored log,
// the run directory's file and piped output keep the bytes.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

const char* kEvilPipeline = R"(version = 1
[[step]]
name = "evil"
run = '''
printf 'clip \033]52;c;aGVsbG8=\007 end\n'
printf 'link \033]8;;https://evil.example/\033\\click\033]8;;\033\\ end\n'
printf 'title \033]0;pwned\007 end\n'
printf 'clear \033[2J\033[H\033[3A end\n'
printf 'hidden\r[deploy] ok\n'
printf '[deploy] ok\n'
printf 'color \033[32mgreen\033[0m end\n'
'''

[[step]]
name = "other"
run = "echo other-line"
)";

struct PtyRun {
  int exit_code = -1;
  std::string out;  // every byte the terminal received
};

// Runs boxcar with `args` on a fresh pseudo-terminal in raw mode (no '\n' -> "\r\n"), so `out`
// holds exactly what boxcar wrote to its terminal.
// NO_COLOR keeps boxcar's own colours out of the way of the assertions; a step's still pass.
PtyRun run_in_pty(const std::vector<std::string>& args, const fs::path& cwd, const fs::path& home,
                  const std::string& api_token = "", bool no_color = true) {
  std::vector<std::string> argv = {boxcar_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> extra = {"TERM=xterm-256color"};
  if (no_color) extra.push_back("NO_COLOR=1");
  if (!api_token.empty()) extra.push_back("BOXCAR_API_TOKEN=" + api_token);
  std::vector<std::string> env = child_env(home, extra);
  if (!no_color) std::erase_if(env, [](const std::string& e) { return e.rfind("NO_COLOR=", 0) == 0; });
  struct termios raw {};
  ::cfmakeraw(&raw);
  struct winsize size {};
  size.ws_row = 50;
  size.ws_col = 200;
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, &raw, &size);
  PtyRun r;
  if (pid < 0) {
    ADD_FAILURE() << "forkpty: " << std::strerror(errno);
    return r;
  }
  if (pid == 0) {
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    std::vector<char*> a, e;
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    for (auto& s : env) e.push_back(s.data());
    e.push_back(nullptr);
    ::execve(a[0], a.data(), e.data());
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + 120s;
  char buf[8192];
  while (std::chrono::steady_clock::now() < deadline) {
    struct pollfd p {master, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n > 0) {
      r.out.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // EIO: every holder of the terminal's other side has closed it
    }
  }
  if (std::chrono::steady_clock::now() >= deadline) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string shown(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n\n";
    } else if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<%02x>", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// What the terminal must not receive: an ESC that does not start an SGR sequence, a BEL, a '\r'
// (the pty is raw: boxcar itself never writes one), a C1 control. "" when there is none.
std::string first_stray_control(const std::string& out) {
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(out[i]);
    if (c == 0x1b) {
      size_t j = i + 1;
      if (j < out.size() && out[j] == '[') {
        ++j;
        while (j < out.size() && (std::isdigit(static_cast<unsigned char>(out[j])) || out[j] == ';')) ++j;
        if (j < out.size() && out[j] == 'm') {
          i = j;
          continue;
        }
      }
      return "ESC at " + std::to_string(i) + ": " + shown(out.substr(i, 20));
    }
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      return "control " + std::to_string(c) + " at " + std::to_string(i) + ": " +
             shown(out.substr(i > 10 ? i - 10 : 0, 30));
    }
    if (c == 0xc2 && i + 1 < out.size() && (static_cast<unsigned char>(out[i + 1]) & 0xe0) == 0x80) {
      return "C1 control at " + std::to_string(i);
    }
  }
  return "";
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The escaped forms the user sees instead of the sequences.
void expect_escaped_forms(const std::string& out) {
  EXPECT_NE(out.find("\\x1b]52;c;aGVsbG8=\\x07"), std::string::npos) << shown(out);
  EXPECT_NE(out.find("\\x1b]8;;https://evil.example/\\x1b\\click"), std::string::npos) << shown(out);
  EXPECT_NE(out.find("\\x1b]0;pwned\\x07"), std::string::npos) << shown(out);
  EXPECT_NE(out.find("\\x1b[2J\\x1b[H\\x1b[3A"), std::string::npos) << shown(out);
  EXPECT_NE(out.find("[evil] hidden\\r[deploy] ok"), std::string::npos) << shown(out);
  EXPECT_NE(out.find("[evil] [deploy] ok"), std::string::npos) << shown(out);
  // The colour passes as the step wrote it.
  EXPECT_NE(out.find("color \x1b[32mgreen\x1b[0m end"), std::string::npos) << shown(out);
  EXPECT_EQ(first_stray_control(out), "") << shown(out);
  for (const auto& line : lines_of(out)) {
    EXPECT_NE(line.rfind("[deploy]", 0), 0u) << "a forged line: " << shown(line);
  }
}

TEST(TerminalOutput, RunShowsStepControlsEscapedButColoursAsTheyAre) {
  TempDir work;
  fs::path ws = work / "ws";
  fs::create_directories(ws);
  write_file(ws / ".boxcar.toml", kEvilPipeline);
  auto r = run_in_pty({"run", "--executor", "host"}, ws, work.path());
  ASSERT_EQ(r.exit_code, 0) << shown(r.out);
  expect_escaped_forms(r.out);
  EXPECT_NE(r.out.find("other-line"), std::string::npos) << shown(r.out);

  // Control: the run directory keeps what the step wrote, byte for byte.
  std::string stored;
  for (const auto& run : fs::directory_iterator(ws / ".boxcar" / "runs")) {
    for (const auto& f : fs::recursive_directory_iterator(run.path())) {
      if (f.is_regular_file() && f.path().filename().string().find("evil") != std::string::npos) {
        stored += read_file(f.path());
      }
    }
  }
  EXPECT_NE(stored.find("\x1b]52;c;aGVsbG8=\x07"), std::string::npos) << shown(stored);
  EXPECT_NE(stored.find("hidden\r[deploy] ok"), std::string::npos) << shown(stored);

  // Control: --json keeps the bytes, JSON-escaped.
  auto piped = run_command({boxcar_binary(), "run", "--executor", "host", "--json"}, ws,
                           child_env(work.path()));
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  bool found = false;
  for (const auto& line : lines_of(piped.out)) {
    auto v = json::parse(line);
    if (v.as_object().contains("line") && v.at("line").as_string() == "clip \x1b]52;c;aGVsbG8=\x07 end") {
      found = true;
    }
  }
  EXPECT_TRUE(found) << piped.out;
  EXPECT_EQ(piped.out.find('\x1b'), std::string::npos) << "--json wrote a raw ESC";
}

TEST(TerminalOutput, LogsAndLogsFollowLabelEveryStepLineAndEscapeIt) {
  TempDir work;
  std::string sha = make_git_repo(work / "repo", kEvilPipeline);
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());
  long id = server.submit({{"repo", (work / "repo").string()}, {"commit", sha}});
  ASSERT_GT(id, 0);
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  ASSERT_EQ(str(*job, "state"), "success") << json::serialize(*job) << server.logs(id);
  std::string job_id = std::to_string(id);

  for (std::vector<std::string> args : {std::vector<std::string>{"logs", "--server", server.url(), job_id},
                                        {"logs", "-f", "--server", server.url(), job_id}}) {
    SCOPED_TRACE(args[1]);
    auto r = run_in_pty(args, work.path(), work.path(), server.token());
    ASSERT_EQ(r.exit_code, 0) << shown(r.out);
    expect_escaped_forms(r.out);
    // Parallel steps' lines are told apart by their labels.
    EXPECT_NE(r.out.find("[other] other-line"), std::string::npos) << shown(r.out);
  }
  // One step's log: labelled and escaped the same way.
  auto one = run_in_pty({"logs", "--server", server.url(), job_id, "evil"}, work.path(), work.path(),
                        server.token());
  ASSERT_EQ(one.exit_code, 0) << shown(one.out);
  expect_escaped_forms(one.out);
  EXPECT_EQ(one.out.find("other-line"), std::string::npos) << shown(one.out);

  // Without NO_COLOR, a terminal gets each label in its step's colour, as `boxcar run` prints it.
  auto coloured = run_in_pty({"logs", "--server", server.url(), job_id, "other"}, work.path(),
                             work.path(), server.token(), /*no_color=*/false);
  ASSERT_EQ(coloured.exit_code, 0) << shown(coloured.out);
  EXPECT_TRUE(std::regex_search(coloured.out, std::regex("\x1b\\[[0-9;]+m\\[other\\]\x1b\\[0m other-line")))
      << shown(coloured.out);

  // Controls: the stored log keeps the bytes; piped, `boxcar logs` keeps them too, labelled.
  std::string raw = server.logs(id);
  EXPECT_NE(raw.find("\x1b]52;c;aGVsbG8=\x07"), std::string::npos) << shown(raw);
  auto piped = server.cli({"logs", "--server", server.url(), job_id}, work.path());
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_NE(piped.out.find("[evil] clip \x1b]52;c;aGVsbG8=\x07 end"), std::string::npos) << shown(piped.out);
  EXPECT_NE(piped.out.find("[evil] hidden\r[deploy] ok"), std::string::npos) << shown(piped.out);
  EXPECT_NE(piped.out.find("[other] other-line"), std::string::npos) << shown(piped.out);
}

}  // namespace
}  // namespace boxcar::service_test
