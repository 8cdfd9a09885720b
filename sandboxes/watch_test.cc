// Watches over real HTTP, in a real sandbox: kinds and paths, recursive, include/exclude, the
// 17th watch, the bounded queue's overflow, a helper that goes with its client, /fs/changes,
// and paths that try to lead the helper out of the sandbox (each beside a control).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "executors/native/control_channel.h"
#include "executors/native/watch_call.h"
#include "executors/native/watch_wire.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/sandbox_suite.h"
#include "sandboxes/watch.h"
#include "testing/scratch_dir.h"

namespace boxcar::sandboxes {
namespace {

namespace json = boost::json;

class WatchTest : public SandboxSuite {
 protected:
  struct Open {
    bool done = false;
    HttpReply reply;
  };
  static SandboxWatches& watches() { return f_->host().find(id_)->watches(); }
  static size_t watching() {
    size_t n = 0;
    for (auto& w : watches().feeds()) {
      auto f = w.lock();
      if (f && f->watching() && !f->ended()) ++n;
    }
    return n;
  }
  // Drives the io_context until `until` holds (or the stream ended).
  template <class F>
  static void drive(F until, const Open* open = nullptr) {
    while (!until() && !(open && open->done)) f_->io().run_one();
  }
  // Opens GET /fs/watch?<query> and returns once it is watching (or answered).
  static std::shared_ptr<Open> start(const std::string& query) {
    auto o = std::make_shared<Open>();
    size_t before = watching();
    f_->send("GET", HostFixture::path(id_, "/fs/watch?" + query), "", [o](HttpReply r) {
      o->reply = std::move(r);
      o->done = true;
    });
    drive([&] { return watching() > before; }, o.get());
    return o;
  }
  static void sh(const std::string& script) {
    auto r = exec({{"argv", {"sh", "-c", script}}});
    EXPECT_EQ(r["exit_code"], 0) << script << ": " << str(r, "stderr");
  }
  // The change events of a finished stream as "kind path" (dirs with a trailing /).
  static std::vector<std::string> changes(const Open& o) {
    std::vector<std::string> out;
    for (auto& [name, data] : sse_events(o.reply.body)) {
      if (name != "change") continue;
      out.push_back(str(data, "kind") + " " + str(data, "path") + (data.at("is_dir").as_bool() ? "/" : ""));
    }
    return out;
  }
  static bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }
};

TEST_F(WatchTest, KindsAndPaths) {
  sh("mkdir -p /workspace/w1 && echo x > /workspace/w1/old");
  auto o = start("path=/workspace/w1");
  ASSERT_FALSE(o->done) << o->reply.status << o->reply.body;
  sh("cd /workspace/w1 && echo a > a.txt && echo more >> a.txt && chmod 600 a.txt && mv a.txt b.txt && rm old && mkdir d");
  sh("rm -rf /workspace/w1");  // the watched directory goes: the stream ends
  f_->run_until(o->done);
  ASSERT_EQ(o->reply.status, 200u) << o->reply.body;
  auto events = sse_events(o->reply.body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.front().first, "watching");
  EXPECT_EQ(events.back().first, "end");
  auto c = changes(*o);
  for (const char* want : {"create /workspace/w1/a.txt", "modify /workspace/w1/a.txt", "attrib /workspace/w1/a.txt",
                           "move_from /workspace/w1/a.txt", "move_to /workspace/w1/b.txt", "delete /workspace/w1/old",
                           "create /workspace/w1/d/"}) {
    EXPECT_TRUE(has(c, want)) << want << " in " << o->reply.body;
  }
}

TEST_F(WatchTest, RecursivePicksUpNewDirectoriesAndFilters) {
  sh("mkdir -p /workspace/w2/old && mkdir -p /workspace/w3");
  auto rec = start("path=/workspace/w2&recursive=1&exclude=*.log");
  auto flat = start("path=/workspace/w3&include=*.py");
  sh("mkdir -p /workspace/w2/new/deeper && touch /workspace/w2/old/f && touch /workspace/w2/new/g");
  sh("touch /workspace/w2/new/deeper/h /workspace/w2/new/deeper/x.log");
  sh("mkdir /workspace/w3/sub && touch /workspace/w3/sub/deep.py /workspace/w3/a.py /workspace/w3/b.txt");
  sh("rm -rf /workspace/w2 /workspace/w3");
  f_->run_until(rec->done);
  f_->run_until(flat->done);
  auto r = changes(*rec);
  EXPECT_TRUE(has(r, "create /workspace/w2/old/f")) << rec->reply.body;
  EXPECT_TRUE(has(r, "create /workspace/w2/new/g")) << rec->reply.body;
  EXPECT_TRUE(has(r, "create /workspace/w2/new/deeper/h")) << "a directory made after the start" << rec->reply.body;
  EXPECT_FALSE(has(r, "create /workspace/w2/new/deeper/x.log")) << "excluded";
  auto f = changes(*flat);
  EXPECT_TRUE(has(f, "create /workspace/w3/a.py")) << flat->reply.body;
  EXPECT_FALSE(has(f, "create /workspace/w3/b.txt")) << "not included";
  EXPECT_FALSE(has(f, "create /workspace/w3/sub/deep.py")) << "not recursive";
}

TEST_F(WatchTest, SeventeenthWatchIsRefused) {
  sh("mkdir -p /workspace/lim");
  std::vector<std::shared_ptr<Open>> open;
  for (size_t i = watches().count(); i < kMaxWatches; ++i) {
    open.push_back(start("path=/workspace/lim"));
    ASSERT_FALSE(open.back()->done) << "control: watch " << i + 1 << " is accepted: " << open.back()->reply.body;
  }
  HttpReply over = get("/fs/watch?path=/workspace/lim");
  EXPECT_EQ(over.status, 429u) << over.body;
  EXPECT_EQ(parse(over.body).at("code"), "limit_reached");
  sh("rm -rf /workspace/lim");
  for (auto& o : open) f_->run_until(o->done);
  EXPECT_EQ(watches().count(), 0u);
}

TEST_F(WatchTest, QueueOverflowIsAnnouncedNeverSilent) {
  // The route's consumer is the HTTP connection; here a consumer that stops reading, in front of
  // the same feed and a real helper, makes the 1,000-event bound exact.
  sh("mkdir -p /workspace/ovf");
  auto feed = std::make_shared<WatchFeed>(WatchSpec{"/workspace/ovf", false, "", ""});
  bool reading = false;
  std::vector<WatchItem> got;
  bool started = false;
  auto handle = f_->host().find(id_)->sandbox().watch({"/workspace/ovf", false}, feed->handlers([&](Status s) {
    EXPECT_TRUE(s) << s.error().message;
    started = true;
  }));
  ASSERT_TRUE(handle) << handle.error().message;
  feed->hold(std::move(*handle));
  feed->attach([&] { return reading; }, [&](WatchItem item) { got.push_back(std::move(item)); });
  f_->run_until(started);
  sh("cd /workspace/ovf && for i in $(seq 1500); do : > f$i; done");
  sh("rm -rf /workspace/ovf");
  drive([&] { return feed->ended(); });
  EXPECT_EQ(feed->queued(), kWatchQueue + 2) << "1,000 changes, the overflow, and the end";
  reading = true;
  feed->pump();
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got.back().name, "end");
  size_t change_count = 0;
  uint64_t dropped = 0;
  for (auto& item : got) {
    if (item.name == "change") ++change_count;
    if (item.name == "overflow") dropped += item.data.at("dropped").as_uint64();
  }
  EXPECT_EQ(change_count, kWatchQueue);
  EXPECT_GE(dropped, 1500u) << "1500 creates and 1500 deletes: what did not fit is counted";
  EXPECT_EQ(change_count + dropped, feed->dropped_total() + kWatchQueue);
}

TEST_F(WatchTest, HelperGoesWithItsClient) {
  auto count_helpers = [] {
    auto r = exec({{"argv", {"sh", "-c", "cat /proc/[0-9]*/comm 2>/dev/null | grep -c boxcar-watch; true"}}});
    return std::atoi(str(r, "stdout").c_str());
  };
  sh("mkdir -p /workspace/gone");
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(f_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string request = "GET " + HostFixture::path(id_, "/fs/watch?path=/workspace/gone") +
                        " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + f_->host().key() +
                        "\r\nX-Boxcar-Owner: alice\r\n\r\n";
  ASSERT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  size_t before = watching();
  drive([&] { return watching() > before; });
  EXPECT_GE(count_helpers(), 1) << "control: the helper runs inside the sandbox while watched";
  HttpReply ps = get("/processes");
  EXPECT_EQ(ps.body.find("boxcar-watch"), std::string::npos) << "not a user process: " << ps.body;
  ::close(fd);
  drive([&] { return watching() == before; });
  int left = 1;
  for (int i = 0; i < 200 && left > 0; ++i) left = count_helpers();  // the kill is asynchronous; no clock
  EXPECT_EQ(left, 0) << "the helper was killed with its client";
}

TEST_F(WatchTest, ChangesAnswersChangedUnchangedResync) {
  sh("mkdir -p /workspace/ch");
  auto answer = [](const std::string& q) { return parse(get("/fs/changes?" + q).body).as_object(); };
  auto first = answer("path=/workspace/ch");
  EXPECT_EQ(first.at("status"), "resync") << "a version nobody had yet";
  uint64_t v1 = first.at("version").to_number<uint64_t>();
  drive([&] {
    for (auto& w : watches().feeds()) {
      auto f = w.lock();
      if (f && f->spec().path == "/workspace/ch" && f->watching()) return true;
    }
    return false;
  });
  EXPECT_EQ(answer("path=/workspace/ch&since=" + std::to_string(v1)).at("status"), "unchanged");
  sh("touch /workspace/ch/new");
  json::object now;
  for (int i = 0; i < 200; ++i) {  // the helper's record arrives asynchronously; no clock
    now = answer("path=/workspace/ch&since=" + std::to_string(v1));
    if (now.at("status") != "unchanged") break;
  }
  EXPECT_EQ(now.at("status"), "changed");
  uint64_t v2 = now.at("version").to_number<uint64_t>();
  EXPECT_GT(v2, v1);
  EXPECT_EQ(answer("path=/workspace/ch&since=" + std::to_string(v2)).at("status"), "unchanged");
  EXPECT_EQ(answer("path=/workspace/ch&since=" + std::to_string(v2 + 1000)).at("status"), "resync") << "unknown";
  EXPECT_EQ(answer("path=/workspace/ch&since=0").at("status"), "resync") << "too old";
  EXPECT_EQ(get("/fs/changes?path=/workspace/ch&since=-1").status, 400u);
}

TEST_F(WatchTest, PathsStayInsideTheSandbox) {
  testing::ScratchDir canary("boxcar-watch-canary");
  const std::string host_dir = canary.dir.string();
  // The same path inside, reached through a planted link to "/": the sandbox's own directory.
  sh("mkdir -p '" + host_dir + "' && ln -sfn / /workspace/to-root && ln -sfn /proc/1/root /workspace/p1 && "
     "ln -sfn ../../../../../../.. /workspace/up");
  EXPECT_EQ(get("/fs/watch?path=/workspace/../etc").status, 400u) << "a .. segment";
  HttpReply magic = get("/fs/watch?path=/workspace/p1" + host_dir);
  EXPECT_EQ(magic.status, 400u) << "a link through /proc is never followed: " << magic.body;
  auto o = start("path=/workspace/up" + host_dir + "&recursive=1");
  ASSERT_FALSE(o->done) << o->reply.body;
  std::ofstream(canary.dir / "HOST-SECRET") << "modified on the host during the watch";
  sh("touch '" + host_dir + "/inside'");
  sh("rm -rf '" + host_dir + "'");
  f_->run_until(o->done);
  auto c = changes(*o);
  EXPECT_TRUE(has(c, "create /workspace/up" + host_dir + "/inside")) << "control: the watch works: " << o->reply.body;
  EXPECT_EQ(o->reply.body.find("HOST-SECRET"), std::string::npos) << "the host's directory is never watched";
}

TEST_F(WatchTest, RemovingTheSandboxEndsItsWatches) {
  auto other = f_->create_sandbox("alice");
  ASSERT_TRUE(other) << other.error().message;
  auto o = std::make_shared<Open>();
  f_->send("GET", HostFixture::path(*other, "/fs/watch?path=/workspace"), "", [o](HttpReply r) {
    o->reply = std::move(r);
    o->done = true;
  });
  drive([&] {
    ApiSandbox* sb = f_->host().find(*other);
    if (!sb) return false;
    for (auto& w : sb->watches().feeds()) {
      auto f = w.lock();
      if (f && f->watching()) return true;
    }
    return false;
  }, o.get());
  ASSERT_FALSE(o->done) << o->reply.body;
  ASSERT_TRUE(f_->remove_sandbox(*other));
  f_->run_until(o->done);
  auto events = sse_events(o->reply.body);
  ASSERT_FALSE(events.empty()) << o->reply.body;
  EXPECT_EQ(events.back().first, "end") << o->reply.body;
}

// What a helper sends is untrusted: forged records end the watch and kill the sender, beside a
// control where well-formed records arrive as events. A child process stands in for the helper.
TEST_F(WatchTest, ForgedHelperRecordsEndTheWatchAndKillTheHelper) {
  using executors::native::watch_record;
  struct Run {
    std::vector<std::string> paths;
    std::optional<Status> end;
    bool killed = false;
  };
  auto feed_records = [](const std::string& records) {
    Run run;
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pid_t child = ::fork();
    if (child == 0) {
      ::pause();
      ::_exit(0);
    }
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
    EXPECT_EQ(executors::native::send_message(sv[1], "P", &pidfd, 1), 0);
    ::close(pidfd);
    EXPECT_EQ(::write(sv[1], records.data(), records.size()), static_cast<ssize_t>(records.size()));
    executors::WatchHandlers h;
    h.on_event = [&](executors::WatchEvent e) { run.paths.push_back(e.path); };
    h.on_end = [&](Status s) { run.end = s; };
    auto call = std::make_shared<executors::native::WatchCall>(f_->io(), unique_fd(sv[0]), executors::WatchRequest{"/workspace", true},
                                                               Millis(60000), std::move(h));
    call->start();
    if (records.back() == 'E') {
      while (!run.end) f_->io().run_one();
    } else {
      // Everything sent was read once the io_context has nothing more to do with the socket.
      while (!run.end && f_->io().poll() > 0) {
      }
    }
    if (run.end && !*run.end) {
      int status = 0;
      run.killed = ::waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    } else {
      call->cancel();
      ::waitpid(child, nullptr, 0);
    }
    ::close(sv[1]);
    return run;
  };
  auto good = feed_records(watch_record('W', 0) + watch_record('C', 0, "a/b.txt") + watch_record('E', 0));
  EXPECT_EQ(good.paths, std::vector<std::string>{"/workspace/a/b.txt"}) << "control";
  ASSERT_TRUE(good.end);
  EXPECT_TRUE(*good.end) << "control: a clean end";
  for (const std::string& payload : std::vector<std::string>{"../../etc/passwd", "a/../../x", "/etc/passwd", std::string("a\0b", 3), "a//b"}) {
    auto bad = feed_records(watch_record('W', 0) + watch_record('C', 0, payload));
    EXPECT_TRUE(bad.paths.empty()) << payload;
    ASSERT_TRUE(bad.end) << payload;
    EXPECT_FALSE(*bad.end) << payload;
    EXPECT_TRUE(bad.killed) << "the helper that sent it is killed: " << payload;
  }
  std::string oversized = watch_record('W', 0) + std::string("C\0\xff\xff", 4) + std::string(0xffff, 'a');
  auto big = feed_records(oversized);
  ASSERT_TRUE(big.end);
  EXPECT_FALSE(*big.end);
  EXPECT_NE(big.end->error().message.find("oversized"), std::string::npos) << big.end->error().message;
  auto unknown_kind = feed_records(watch_record('W', 0) + watch_record('C', 9, "x"));
  ASSERT_TRUE(unknown_kind.end);
  EXPECT_FALSE(*unknown_kind.end);
  auto before_watching = feed_records(watch_record('C', 0, "x"));
  ASSERT_TRUE(before_watching.end);
  EXPECT_FALSE(*before_watching.end) << "a change before watching";
}

TEST_F(WatchTest, BadQueriesAreRefusedWithTheField) {
  HttpReply r = get("/fs/watch?path=/workspace&recursive=yes");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(parse(r.body).at("field"), "recursive");
  r = get("/fs/watch?path=/workspace/no-such-dir");
  EXPECT_EQ(r.status, 404u) << r.body;
  EXPECT_EQ(parse(r.body).at("code"), "file_not_found");
  r = get("/fs/watch?path=/workspace&include=" + std::string(300, 'a'));
  EXPECT_EQ(parse(r.body).at("field"), "include");
}

}  // namespace
}  // namespace boxcar::sandboxes
