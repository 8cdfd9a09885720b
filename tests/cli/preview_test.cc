// Preview URLs of `boxcar run`: real servers in real sandboxes, reached through the real proxy
// while boxcar keeps running after its pipeline.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include <boost/json.hpp>

#include "tests/cli/boxcar_process.h"

namespace boxcar::testing {
namespace {

namespace json = boost::json;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// boxcar run --json as a child that keeps running while the test talks to it.
class LiveBoxcar {
 public:
  LiveBoxcar(std::vector<std::string> args, const std::filesystem::path& cwd) {
    int out[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    std::string err_file = (cwd / "boxcar.stderr").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      int e = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(e, 2);
      if (::chdir(cwd.c_str()) != 0) ::_exit(127);
      args.insert(args.begin(), BOXCAR_BINARY);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      char path[] = "PATH=/usr/local/bin:/usr/bin:/bin";
      char lang[] = "LANG=C.UTF-8";
      char* envp[] = {path, lang, nullptr};
      ::execve(argv[0], argv.data(), envp);
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
  }
  ~LiveBoxcar() {
    if (pid_ > 0 && exit_code_ < 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
  }

  // Reads events until `match` accepts one; nullopt at EOF or after `deadline`.
  std::optional<json::object> wait_for(const std::function<bool(const json::object&)>& match,
                                       seconds deadline = seconds(60)) {
    auto until = Clock::now() + deadline;
    for (;;) {
      while (true) {
        size_t nl = buf_.find('\n');
        if (nl == std::string::npos) break;
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        all_ += line + "\n";
        boost::system::error_code ec;
        auto v = json::parse(line, ec);
        if (!ec && v.is_object() && match(v.as_object())) return v.as_object();
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char b[4096];
      ssize_t n = ::read(out_, b, sizeof b);
      if (n <= 0) return std::nullopt;
      buf_.append(b, static_cast<size_t>(n));
    }
  }

  void signal(int sig) { ::kill(pid_, sig); }

  // The exit code, or -1 if it did not exit before `deadline` (then it is killed).
  int wait_exit(seconds deadline = seconds(60)) {
    auto until = Clock::now() + deadline;
    while (Clock::now() < until) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

  const std::string& seen() const { return all_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int exit_code_ = -1;
  std::string buf_, all_;
};

bool is_event(const json::object& e, std::string_view name) { return e.at("event").as_string() == name; }

// The preview event sent after the pipeline ended, which carries its closing time.
std::function<bool(const json::object&)> open_until(std::string_view name) {
  return [name](const json::object& e) {
    return is_event(e, "preview") && e.at("name").as_string() == name && e.at("until").is_string();
  };
}

int connect_to(uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{20, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

std::string read_all(int s) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(s, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

// "http://host:port/rest" -> {host:port, port, /rest}
struct Url {
  std::string authority;
  uint16_t port = 0;
  std::string path;
};
Url parse_url(std::string_view u) {
  u.remove_prefix(7);
  Url url;
  size_t slash = u.find('/');
  url.authority = std::string(u.substr(0, slash));
  url.path = std::string(u.substr(slash));
  url.port = static_cast<uint16_t>(std::stoi(url.authority.substr(url.authority.rfind(':') + 1)));
  return url;
}

// GET through the proxy; Host is the URL's authority (the Host form routes on it).
std::string get(const std::string& url_text, const std::string& rel = "") {
  Url url = parse_url(url_text);
  int s = connect_to(url.port);
  if (s < 0) return "connection refused";
  std::string req = "GET " + url.path + rel + " HTTP/1.1\r\nHost: " + url.authority +
                    "\r\nConnection: close\r\n\r\n";
  (void)!::write(s, req.data(), req.size());
  std::string out = read_all(s);
  ::close(s);
  return out;
}

std::string str(const json::object& e, const char* key) { return std::string(e.at(key).as_string()); }

class PreviewTest : public ::testing::TestWithParam<std::string> {
 protected:
  // Distinct ports per test and executor: the host executor shares the host's loopback.
  int port(int base) const { return base + (GetParam() == "host" ? 100 : 0); }
};

INSTANTIATE_TEST_SUITE_P(Executors, PreviewTest, ::testing::Values("native", "host"));

TEST_P(PreviewTest, ServesDependentsAndTheProxyUntilInterrupted) {
  TempDir dir;
  std::string p = std::to_string(port(18611));
  dir.write("site/index.html", "preview-marker-42\n");
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "web"
run = "cd site && exec python3 -m http.server )" + p + R"( --bind 127.0.0.1"
[[step.expose]]
port = )" + p + R"(
name = "web"
ready = { http = "/index.html" }
[[step]]
name = "check"
needs = ["web"]
run = """
python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:)" + p + R"(/index.html").read().decode())'
echo "env=$BOXCAR_PREVIEW_WEB"
"""
)");
  LiveBoxcar boxcar({"run", "--json", "--executor", GetParam(), "--preview-listen", "127.0.0.1:0"},
                    dir.path());
  auto ev = boxcar.wait_for(open_until("web"));
  ASSERT_TRUE(ev) << boxcar.seen() << dir.read("boxcar.stderr");
  std::string url = str(*ev, "url"), path_url = str(*ev, "path_url");
  EXPECT_EQ(str(*ev, "step"), "web");
  EXPECT_TRUE(url.starts_with("http://" + p + "-")) << url;
  EXPECT_NE(boxcar.seen().find("preview-marker-42"), std::string::npos) << boxcar.seen();
  EXPECT_NE(boxcar.seen().find("env=" + url), std::string::npos) << boxcar.seen();
  EXPECT_NE(boxcar.seen().find(R"("event":"pipeline_finished","status":"success")"), std::string::npos);

  std::string host_form = get(url, "index.html");
  EXPECT_NE(host_form.find(" 200 "), std::string::npos) << host_form;
  EXPECT_NE(host_form.find("preview-marker-42"), std::string::npos) << host_form;
  std::string path_form = get(path_url, "index.html");
  EXPECT_NE(path_form.find(" 200 "), std::string::npos) << path_form;
  EXPECT_NE(path_form.find("preview-marker-42"), std::string::npos) << path_form;

  std::string token = path_url.substr(path_url.size() - 17, 16);
  std::string wrong = token;
  wrong[3] = wrong[3] == 'a' ? 'b' : 'a';
  std::string bad_path = path_url;
  bad_path.replace(bad_path.size() - 17, 16, wrong);
  EXPECT_NE(get(bad_path, "index.html").find(" 404 "), std::string::npos);
  std::string bad_host = url;
  bad_host.replace(bad_host.find(token), 16, wrong);
  EXPECT_NE(get(bad_host, "index.html").find(" 404 "), std::string::npos);

  boxcar.signal(SIGINT);
  EXPECT_EQ(boxcar.wait_exit(), 0) << boxcar.seen();  // the pipeline's code, not 130
  EXPECT_EQ(get(url, "index.html"), "connection refused");
}

TEST_P(PreviewTest, WebSocketUpgradePassesThrough) {
  TempDir dir;
  std::string p = std::to_string(port(18621));
  // Answers the handshake, then echoes one masked client frame as an unmasked text frame.
  dir.write("ws.py", R"(import base64, hashlib, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
while True:
    c, _ = s.accept()
    d = b""
    while b"\r\n\r\n" not in d:
        x = c.recv(4096)
        if not x:
            break
        d += x
    if b"\r\n\r\n" not in d:
        c.close()
        continue
    head, rest = d.split(b"\r\n\r\n", 1)
    key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:")]
    acc = base64.b64encode(hashlib.sha1(key[0] + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
    buf = rest
    while len(buf) < 2 or len(buf) < 6 + (buf[1] & 127):
        buf += c.recv(4096)
    n = buf[1] & 127
    payload = bytes(b ^ buf[2 + i % 4] for i, b in enumerate(buf[6:6 + n]))
    c.sendall(bytes([0x81, n]) + payload)
    c.close()
)");
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "ws"
run = "exec python3 ws.py )" + p + R"("
[[step.expose]]
port = )" + p + R"(
name = "socket"
)");
  LiveBoxcar boxcar({"run", "--json", "--executor", GetParam(), "--preview-listen", "127.0.0.1:0"},
                    dir.path());
  auto ev = boxcar.wait_for(open_until("socket"));
  ASSERT_TRUE(ev) << boxcar.seen() << dir.read("boxcar.stderr");
  Url url = parse_url(str(*ev, "url"));
  int s = connect_to(url.port);
  ASSERT_GE(s, 0);
  std::string req = "GET / HTTP/1.1\r\nHost: " + url.authority +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  ASSERT_EQ(::write(s, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string got;
  char buf[4096];
  while (got.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = ::read(s, buf, sizeof buf);
    ASSERT_GT(n, 0) << got;
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_TRUE(got.starts_with("HTTP/1.1 101")) << got;
  EXPECT_NE(got.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos) << got;
  const unsigned char mask[4] = {1, 2, 3, 4};
  std::string frame = {'\x81', static_cast<char>(0x80 | 5), 1, 2, 3, 4};
  for (int i = 0; i < 5; ++i) frame.push_back(static_cast<char>("hello"[i] ^ mask[i % 4]));
  ASSERT_EQ(::write(s, frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
  std::string echo = got.substr(got.find("\r\n\r\n") + 4) + read_all(s);
  ::close(s);
  EXPECT_EQ(echo, std::string("\x81\x05hello", 7));
  boxcar.signal(SIGINT);
  EXPECT_EQ(boxcar.wait_exit(), 0) << boxcar.seen();
}

TEST_P(PreviewTest, ClosesEachPreviewAtItsTtlThenExits) {
  TempDir dir;
  std::string p1 = std::to_string(port(18631)), p2 = std::to_string(port(18632));
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "short"
run = "exec python3 -m http.server )" + p1 + R"( --bind 127.0.0.1"
preview_ttl = "2s"
[[step.expose]]
port = )" + p1 + R"(
[[step]]
name = "long"
run = "exec python3 -m http.server )" + p2 + R"( --bind 127.0.0.1"
preview_ttl = "8s"
[[step.expose]]
port = )" + p2 + R"(
)");
  LiveBoxcar boxcar({"run", "--json", "--executor", GetParam(), "--preview-listen", "127.0.0.1:0"},
                    dir.path());
  auto short_ev = boxcar.wait_for(open_until("short"));
  ASSERT_TRUE(short_ev) << boxcar.seen() << dir.read("boxcar.stderr");
  auto long_ev = boxcar.wait_for(open_until("long"));
  ASSERT_TRUE(long_ev) << boxcar.seen();
  auto closed = boxcar.wait_for([](const json::object& e) {
    return is_event(e, "notice") && e.at("message").as_string().starts_with("short: closing preview");
  });
  ASSERT_TRUE(closed) << boxcar.seen();
  EXPECT_NE(get(str(*short_ev, "url")).find(" 404 "), std::string::npos);
  EXPECT_NE(get(str(*long_ev, "url")).find(" 200 "), std::string::npos);
  EXPECT_EQ(boxcar.wait_exit(), 0) << boxcar.seen();  // by itself, at the longer TTL
}

TEST_P(PreviewTest, ServerExitingBeforeReadyFailsTheStep) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "web"
run = "exit 3"
[[step.expose]]
port = )" + std::to_string(port(18641)) + R"(
[[step]]
name = "after"
needs = ["web"]
run = "true"
)");
  auto r = run_boxcar({"run", "--json", "--executor", GetParam(), "--preview-listen", "127.0.0.1:0"},
                      dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("before port"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("step":"after","status":"skipped")"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace boxcar::testing
