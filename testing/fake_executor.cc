#include "testing/fake_executor.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cerrno>

#include "executors/loopback.h"

namespace boxcar::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using executors::Outcome;

FakeCommand FakeCommand::server(uint16_t port, Millis after) {
  FakeCommand c = forever();
  c.listens.push_back({port, after, 200});
  return c;
}

FakeCommand FakeCommand::forever() {
  FakeCommand c;
  c.exits_after.reset();
  return c;
}

FakeCommand FakeCommand::exits(Outcome outcome, Millis after) {
  FakeCommand c;
  c.outcome = std::move(outcome);
  c.exits_after = after;
  return c;
}

namespace {

// One accepted connection: answers the first request head with the scripted status, or just
// closes when the peer does (a tcp ready check).
struct Session : std::enable_shared_from_this<Session> {
  Session(tcp::socket s, int st) : socket(std::move(s)), status(st) {}
  void read() {
    auto self = shared_from_this();
    socket.async_read_some(asio::buffer(buf), [self](boost::system::error_code ec, size_t n) {
      if (ec) return;
      self->head.append(self->buf.data(), n);
      if (self->head.find("\r\n\r\n") == std::string::npos) return self->read();
      self->reply = "HTTP/1.0 " + std::to_string(self->status) +
                    " Fake\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfake\n";
      asio::async_write(self->socket, asio::buffer(self->reply),
                        [self](boost::system::error_code, size_t) {
                          boost::system::error_code ignored;
                          self->socket.shutdown(tcp::socket::shutdown_both, ignored);
                        });
    });
  }
  tcp::socket socket;
  int status;
  std::array<char, 1024> buf{};
  std::string head, reply;
};

// A server's port: a real listener on an ephemeral loopback port standing for `port` inside.
struct Listener {
  Listener(asio::io_context& io, int st)
      : acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)), status(st) {
    accept();
  }
  void accept() {
    acceptor.async_accept([this, open = open](boost::system::error_code ec, tcp::socket s) {
      if (ec || !*open) return;
      std::make_shared<Session>(std::move(s), status)->read();
      accept();
    });
  }
  ~Listener() {
    *open = false;
    boost::system::error_code ignored;
    acceptor.close(ignored);
  }
  uint16_t real_port() const { return acceptor.local_endpoint().port(); }

  tcp::acceptor acceptor;
  int status;
  std::shared_ptr<bool> open = std::make_shared<bool>(true);
};

}  // namespace

// A running exec: its timers and its listeners go when it ends.
struct Proc {
  std::shared_ptr<FakeExecutor::Exec> record;
  executors::ExecHandlers handlers;
  FakeCommand script;
  std::vector<std::unique_ptr<asio::steady_timer>> timers;
  std::map<uint16_t, std::unique_ptr<Listener>> listeners;
  bool done = false;

  void quiesce() {
    done = true;
    for (auto& t : timers) t->cancel();
    listeners.clear();
  }
  void end(const Outcome& o) {
    if (done) return;
    quiesce();
    record->ended = o;
    auto on_exit = std::move(handlers.on_exit);
    handlers = {};
    if (on_exit) on_exit(o);
  }
};

struct SandboxState {
  std::string name;
  std::vector<std::shared_ptr<Proc>> procs;
  size_t connects = 0;
  bool stopped = false;
  bool destroyed = false;
};

struct FakeExecutor::State {
  explicit State(asio::io_context& i) : io(i) {}
  ~State() {
    for (auto& sb : sandboxes) {
      for (auto& p : sb->procs) p->quiesce();
    }
  }
  size_t running() const {
    size_t n = 0;
    for (const auto& sb : sandboxes) {
      for (const auto& p : sb->procs) n += p->done ? 0 : 1;
    }
    return n;
  }
  std::shared_ptr<Proc> latest(std::string_view command) const {
    for (auto sb = sandboxes.rbegin(); sb != sandboxes.rend(); ++sb) {
      for (auto p = (*sb)->procs.rbegin(); p != (*sb)->procs.rend(); ++p) {
        if (!(*p)->done && (*p)->record->command == command) return *p;
      }
    }
    return nullptr;
  }
  void open_port(Proc& p, uint16_t port, int status) {
    if (p.done) return;
    p.listeners[port] = std::make_unique<Listener>(io, status);
  }

  asio::io_context& io;
  std::map<std::string, FakeCommand, std::less<>> scripts;
  std::vector<std::shared_ptr<Exec>> execs;
  std::vector<std::shared_ptr<SandboxState>> sandboxes;
  size_t max_running = 0;
  bool fail_starts = false;
};

namespace {

class FakeSandbox : public executors::Sandbox {
 public:
  FakeSandbox(std::shared_ptr<FakeExecutor::State> state, std::shared_ptr<SandboxState> me)
      : state_(std::move(state)), me_(std::move(me)) {}
  ~FakeSandbox() override { destroy(); }

  Status exec(const executors::ExecRequest& request, executors::ExecHandlers handlers) override {
    if (me_->stopped || me_->destroyed) return Error{"fake: the sandbox is stopped", ESRCH};
    auto p = std::make_shared<Proc>();
    p->record = std::make_shared<FakeExecutor::Exec>();
    p->record->step = me_->name;
    p->record->command = request.argv.empty() ? "" : request.argv.back();
    p->record->env = request.env;
    p->handlers = std::move(handlers);
    if (auto it = state_->scripts.find(p->record->command); it != state_->scripts.end()) {
      p->script = it->second;
    }
    state_->execs.push_back(p->record);
    me_->procs.push_back(p);
    state_->max_running = std::max(state_->max_running, state_->running());
    // Like a real sandbox, nothing is reported from inside exec().
    std::weak_ptr<Proc> weak = p;
    auto state = state_;
    asio::post(state_->io, [weak, state] {
      auto proc = weak.lock();
      if (!proc || proc->done) return;
      for (const std::string& line : proc->script.output) {
        if (proc->handlers.on_output) proc->handlers.on_output(executors::OutputStream::out, line + "\n");
      }
      for (const FakeCommand::Port& port : proc->script.listens) {
        if (port.after.count() == 0) {
          state->open_port(*proc, port.port, port.http_status);
          continue;
        }
        after(proc, state->io, port.after, [state, port](Proc& q) {
          state->open_port(q, port.port, port.http_status);
        });
      }
      if (proc->script.exits_after) {
        Outcome o = proc->script.outcome;
        after(proc, state->io, *proc->script.exits_after, [o](Proc& q) { q.end(o); });
      }
    });
    return {};
  }

  void stop(Outcome::Kind reason, Millis grace) override {
    me_->stopped = true;
    for (auto& p : me_->procs) {
      if (p->done || p->record->stopped) continue;
      p->record->stopped = reason;
      after(p, state_->io, p->script.ignores_sigterm ? grace : Millis(0),
            [reason](Proc& q) { q.end(Outcome::of(reason)); });
    }
  }

  void destroy() override {
    if (me_->destroyed) return;
    me_->destroyed = me_->stopped = true;
    for (auto& p : me_->procs) p->quiesce();
  }

  Result<unique_fd> connect_tcp(uint16_t port) override {
    ++me_->connects;
    if (!me_->destroyed) {
      for (auto& p : me_->procs) {
        auto it = p->listeners.find(port);
        if (it != p->listeners.end()) return executors::connect_loopback(it->second->real_port());
      }
    }
    return Error{"fake: nothing listens on port " + std::to_string(port), ECONNREFUSED};
  }

 private:
  // Runs `then(proc)` after `delay` on the io_context, unless the proc ended first.
  static void after(const std::shared_ptr<Proc>& p, asio::io_context& io, Millis delay,
                    std::function<void(Proc&)> then) {
    auto timer = std::make_unique<asio::steady_timer>(io, delay);
    std::weak_ptr<Proc> weak = p;
    timer->async_wait([weak, then = std::move(then)](const boost::system::error_code& ec) {
      auto q = weak.lock();
      if (!ec && q && !q->done) then(*q);
    });
    p->timers.push_back(std::move(timer));
  }

  std::shared_ptr<FakeExecutor::State> state_;
  std::shared_ptr<SandboxState> me_;
};

class FakeJob : public executors::Job {
 public:
  explicit FakeJob(std::shared_ptr<FakeExecutor::State> state) : state_(std::move(state)) {}
  Result<std::unique_ptr<executors::Sandbox>> start(const executors::SandboxSpec& spec) override {
    if (state_->fail_starts) return Error{"fake: the sandbox could not be set up", EIO};
    auto sb = std::make_shared<SandboxState>();
    sb->name = spec.name;
    state_->sandboxes.push_back(sb);
    return std::unique_ptr<executors::Sandbox>(std::make_unique<FakeSandbox>(state_, sb));
  }
  std::string workspace_path() const override { return "/workspace"; }
  void destroy() override {}

 private:
  std::shared_ptr<FakeExecutor::State> state_;
};

}  // namespace

FakeExecutor::FakeExecutor(asio::io_context& io) : io_(io), state_(std::make_shared<State>(io)) {}

FakeExecutor::~FakeExecutor() = default;

void FakeExecutor::script(std::string command, FakeCommand what) {
  state_->scripts[std::move(command)] = std::move(what);
}

Result<std::unique_ptr<executors::Job>> FakeExecutor::prepare(const executors::JobSpec&) {
  return std::unique_ptr<executors::Job>(std::make_unique<FakeJob>(state_));
}

bool FakeExecutor::run_until(const std::function<bool()>& done, std::chrono::milliseconds deadline) {
  // The guard keeps run_one_for waiting for work (a post from another thread, a timer) rather
  // than returning at once and spinning when the queue is momentarily empty.
  auto guard = asio::make_work_guard(io_);
  auto end = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    if (io_.stopped()) io_.restart();
    io_.run_one_for(std::chrono::milliseconds(50));
  }
  return true;
}

size_t FakeExecutor::started(std::string_view command) const {
  size_t n = 0;
  for (const auto& e : state_->execs) n += e->command == command ? 1 : 0;
  return n;
}

const FakeExecutor::Exec* FakeExecutor::last(std::string_view command) const {
  for (auto it = state_->execs.rbegin(); it != state_->execs.rend(); ++it) {
    if ((*it)->command == command) return it->get();
  }
  return nullptr;
}

const std::vector<std::shared_ptr<FakeExecutor::Exec>>& FakeExecutor::execs() const {
  return state_->execs;
}

bool FakeExecutor::listening(std::string_view step, uint16_t port) const {
  for (const auto& sb : state_->sandboxes) {
    if (sb->name != step || sb->destroyed) continue;
    for (const auto& p : sb->procs) {
      if (p->listeners.count(port)) return true;
    }
  }
  return false;
}

size_t FakeExecutor::connects(std::string_view step) const {
  size_t n = 0;
  for (const auto& sb : state_->sandboxes) n += sb->name == step ? sb->connects : 0;
  return n;
}

size_t FakeExecutor::live_sandboxes() const {
  size_t n = 0;
  for (const auto& sb : state_->sandboxes) n += sb->destroyed ? 0 : 1;
  return n;
}

size_t FakeExecutor::running() const { return state_->running(); }

size_t FakeExecutor::max_running() const { return state_->max_running; }

void FakeExecutor::fail_starts(bool fail) { state_->fail_starts = fail; }

void FakeExecutor::listen(std::string_view command, uint16_t port, int http_status) {
  if (auto p = state_->latest(command)) state_->open_port(*p, port, http_status);
}

void FakeExecutor::exit(std::string_view command, Outcome outcome) {
  // Posted: on_exit runs on the io_context, never inside the test's call.
  if (auto p = state_->latest(command)) {
    std::weak_ptr<Proc> weak = p;
    asio::post(io_, [weak, outcome] {
      if (auto q = weak.lock()) q->end(outcome);
    });
  }
}

}  // namespace boxcar::testing
