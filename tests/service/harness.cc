#include "tests/service/harness.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

namespace boxcar::service_test {

namespace json = boost::json;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// --- files -------------------------------------------------------------------------------

TempDir::TempDir() {
  char tmpl[] = "/tmp/boxcar-svc-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  path_ = tmpl;
  // Sandboxed steps run as an unprivileged uid: let them reach what the test shares.
  fs::permissions(path_, fs::perms::all);
}

TempDir::~TempDir() {
  if (std::getenv("BOXCAR_KEEP_TEST_DIRS")) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const fs::path& path, const std::string& content) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// --- processes ---------------------------------------------------------------------------

Process::Process(std::vector<std::string> argv, std::vector<std::string> env, fs::path log_dir,
                 std::string label, fs::path cwd)
    : label_(std::move(label)) {
  fs::create_directories(log_dir);
  out_path_ = log_dir / (label_ + ".out");
  err_path_ = log_dir / (label_ + ".err");
  int out_fd = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) throw std::runtime_error("cannot open the log files of " + label_);
  std::vector<char*> args, envp;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);
    setpgid(0, 0);
    int devnull = ::open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(10s);
  }
  // Whatever it left in its process group (host-executor steps of a killed agent).
  if (pid_ > 0) ::kill(-pid_, SIGKILL);
}

void Process::signal(int sig) {
  if (!exit_code_) ::kill(pid_, sig);
}

bool Process::running() {
  if (exit_code_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

std::optional<int> Process::wait(std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (running()) {
    if (std::chrono::steady_clock::now() >= end) return std::nullopt;
    std::this_thread::sleep_for(20ms);
  }
  return exit_code_;
}

static std::string tail(const std::string& s, size_t n = 3000) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

std::string Process::describe() const {
  return "--- " + label_ + " (pid " + std::to_string(pid_) + ", exit " +
         (exit_code_ ? std::to_string(*exit_code_) : std::string("running")) + ") stdout:\n" +
         tail(out()) + "\n--- " + label_ + " stderr:\n" + tail(err()) + "\n";
}

std::string boxcar_binary() {
  const char* override_path = std::getenv("BOXCAR_TEST_BINARY");
  return override_path != nullptr && *override_path != '\0' ? override_path : BOXCAR_BINARY;
}

std::vector<std::string> child_env(const fs::path& home, const std::vector<std::string>& extra) {
  std::vector<std::string> env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                  "LANG=C.UTF-8", "NO_COLOR=1", "HOME=" + home.string()};
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::unique_ptr<Process> start_boxcar(const std::vector<std::string>& args, const fs::path& log_dir,
                                      const std::string& label,
                                      const std::vector<std::string>& extra_env) {
  std::vector<std::string> argv = {boxcar_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<Process>(argv, child_env(log_dir, extra_env), log_dir, label, log_dir);
}

CommandResult run_command(const std::vector<std::string>& argv, const fs::path& cwd,
                          const std::vector<std::string>& env) {
  TempDir logs;
  static int counter = 0;
  std::string label = "cmd" + std::to_string(++counter);
  std::vector<std::string> e = env.empty() ? child_env(logs.path()) : env;
  Process p(argv, e, logs.path(), label, cwd);
  CommandResult r;
  auto code = p.wait(120s);
  if (!code) {
    p.signal(SIGKILL);
    p.wait(10s);
  }
  r.exit_code = code.value_or(-1);
  r.out = p.out();
  r.err = p.err();
  return r;
}

CommandResult run_boxcar(const std::vector<std::string>& args, const fs::path& home,
                         const std::vector<std::string>& extra_env) {
  std::vector<std::string> argv = {boxcar_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, home, child_env(home, extra_env));
}

// --- HTTP --------------------------------------------------------------------------------

HttpResult http_request(int port, const std::string& method, const std::string& target,
                        const std::map<std::string, std::string>& headers, const std::string& body,
                        std::chrono::milliseconds timeout) {
  HttpResult result;
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::user_agent, "boxcar-service-test");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  req.keep_alive(false);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256u << 20);
  net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));

  auto do_read = [&] {
    stream.expires_after(timeout);
    http::async_read(stream, buffer, parser, [&](beast::error_code ec, size_t) {
      if (ec && !parser.is_done()) {
        result.error = "read: " + ec.message();
        return;
      }
      auto& res = parser.get();
      result.status = static_cast<int>(res.result_int());
      result.body = res.body();
      for (const auto& f : res) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        result.headers[name] = std::string(f.value());
      }
    });
  };
  stream.expires_after(timeout);
  stream.async_connect(ep, [&](beast::error_code ec) {
    if (ec) {
      result.error = "connect: " + ec.message();
      return;
    }
    stream.expires_after(timeout);
    http::async_write(stream, req, [&](beast::error_code wec, size_t) {
      // A server may answer (413) and close before it read the whole body: read anyway.
      if (wec) result.error = "write: " + wec.message();
      do_read();
    });
  });
  ioc.run();
  if (result.status != 0) result.error.clear();
  return result;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("bind");
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// --- git ---------------------------------------------------------------------------------

std::string make_git_repo(const fs::path& dir, const std::string& pipeline,
                          const std::map<std::string, std::string>& files,
                          const std::string& branch) {
  fs::create_directories(dir);
  auto git = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/git", "-c", "user.name=boxcar test", "-c",
                                     "user.email=test@boxcar.invalid", "-c", "commit.gpgsign=false"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_command(argv, dir);
    if (r.exit_code != 0) {
      throw std::runtime_error("git " + args[0] + " failed: " + r.err + r.out);
    }
    return r.out;
  };
  if (!fs::exists(dir / ".git")) git({"init", "-q", "-b", branch});
  if (!pipeline.empty()) write_file(dir / ".boxcar.toml", pipeline);
  for (const auto& [rel, content] : files) write_file(dir / rel, content);
  git({"add", "-A"});
  git({"commit", "-q", "--allow-empty", "-m", "test commit"});
  std::string sha = git({"rev-parse", "HEAD"});
  while (!sha.empty() && (sha.back() == '\n' || sha.back() == '\r')) sha.pop_back();
  return sha;
}

// --- waiting -----------------------------------------------------------------------------

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds deadline,
                const std::string& what) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= end) break;
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << "timed out after " << deadline.count() << " ms waiting until " << what;
  return false;
}

// --- the service -------------------------------------------------------------------------

bool is_final_state(const std::string& state) {
  return state == "success" || state == "failed" || state == "cancelled" || state == "error" ||
         state == "skipped";
}

std::string str(const json::object& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return "";
  return std::string(it->value().as_string());
}

long num(const json::object& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_int64()) return -1;
  return static_cast<long>(it->value().as_int64());
}

Server::Server(const fs::path& work, const std::vector<std::string>& extra, int port,
               const std::string& label, const std::vector<std::string>& launcher)
    : data_(work / "data"), port_(port == 0 ? free_port() : port) {
  // The tests' repositories are local paths.
  std::vector<std::string> args = {"serve", "--listen", "127.0.0.1:" + std::to_string(port_),
                                   "--data", data_.string(), "--allow-local-repos"};
  args.insert(args.end(), extra.begin(), extra.end());
  if (launcher.empty()) {
    proc_ = start_boxcar(args, work, label);
  } else {
    std::vector<std::string> argv = launcher;
    argv.push_back(boxcar_binary());
    argv.insert(argv.end(), args.begin(), args.end());
    proc_ = std::make_unique<Process>(argv, child_env(work), work, label, work);
  }
  bool healthy = false;
  auto end = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < end) {
    if (!proc_->running()) break;
    if (http_request(port_, "GET", "/healthz", {}, "", 5s).status == 200) {
      healthy = true;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  if (!healthy) {
    ADD_FAILURE() << "boxcar serve did not become healthy on port " << port_ << "\n"
                  << proc_->describe();
  }
  ok_ = healthy;
  for (size_t i = 0; i + 1 < extra.size(); ++i) {
    if (extra[i] == "--api-token") token_ = extra[i + 1];
  }
  bool listed = std::find(extra.begin(), extra.end(), "--api-tokens") != extra.end();
  if (token_.empty() && !listed && healthy) {
    token_ = read_file(data_ / "api-token");
    while (!token_.empty() && token_.back() == '\n') token_.pop_back();
    if (token_.empty()) ADD_FAILURE() << "serve wrote no token to " << (data_ / "api-token");
  }
}

std::map<std::string, std::string> Server::auth(std::map<std::string, std::string> extra) const {
  extra.emplace("Authorization", "Bearer " + token_);
  return extra;
}

HttpResult Server::api(const std::string& method, const std::string& target, const std::string& body,
                       std::map<std::string, std::string> headers) {
  if (!body.empty()) headers.emplace("Content-Type", "application/json");
  return http_request(port_, method, target, auth(std::move(headers)), body);
}

CommandResult Server::cli(const std::vector<std::string>& args, const fs::path& home) {
  return run_boxcar(args, home, {"BOXCAR_API_TOKEN=" + token_});
}

long Server::submit(const json::object& body) {
  auto r = api("POST", "/api/v1/jobs", json::serialize(body));
  if (r.status != 201) {
    ADD_FAILURE() << "POST /api/v1/jobs: " << r.status << " " << r.error << " " << r.body;
    return -1;
  }
  auto v = json::parse(r.body);
  return num(v.as_object(), "id");
}

std::optional<json::object> Server::job(long id) {
  auto r = api("GET", "/api/v1/jobs/" + std::to_string(id));
  if (r.status != 200) return std::nullopt;
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v.as_object();
}

std::vector<json::object> Server::jobs(const std::string& query) {
  std::vector<json::object> out;
  auto r = api("GET", "/api/v1/jobs" + query);
  if (r.status != 200) {
    ADD_FAILURE() << "GET /api/v1/jobs" << query << ": " << r.status << " " << r.error;
    return out;
  }
  auto v = json::parse(r.body);
  for (auto& j : v.as_object().at("jobs").as_array()) out.push_back(j.as_object());
  return out;
}

std::string Server::logs(long id, const std::string& step) {
  std::string target = "/api/v1/jobs/" + std::to_string(id) + "/logs";
  if (!step.empty()) target += "?step=" + step;
  auto r = api("GET", target);
  return r.status == 200 ? r.body : "";
}

std::optional<json::object> Server::wait_final(long id, std::chrono::milliseconds deadline) {
  std::optional<json::object> last;
  bool done = wait_until(
      [&] {
        auto j = job(id);
        if (j) last = j;
        return j && is_final_state(str(*j, "state"));
      },
      deadline, "job " + std::to_string(id) + " is final");
  if (!done) {
    ADD_FAILURE() << "last seen: " << (last ? json::serialize(*last) : "nothing") << "\n"
                  << proc_->describe();
    return std::nullopt;
  }
  return last;
}

}  // namespace boxcar::service_test
