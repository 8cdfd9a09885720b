// Sandbox::file_op of a real native sandbox: the file helper works inside the sandbox as its
// root, and no path, link or magic link the sandbox plants leads it to the host (a canary file
// on the host is never read nor written, beside controls that show each probe works). Forged
// and oversized replies are refused.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "executors/native/file_call.h"
#include "executors/native/file_wire.h"
#include "executors/native/native_executor.h"
#include "testing/sandbox_run.h"
#include "testing/scratch_dir.h"

namespace boxcar::executors {
namespace {

namespace fs = std::filesystem;
using native::check_file_reply;

constexpr const char* kPath = "PATH=/usr/bin:/bin";

struct Box {
  testing::ScratchDir workspace{"boxcar-files-test"};
  std::unique_ptr<Job> job;
  std::unique_ptr<Sandbox> sandbox;
};

std::unique_ptr<Box> make_box(Executor& executor, const std::string& name) {
  auto box = std::make_unique<Box>();
  auto job = executor.prepare(JobSpec{name, box->workspace.dir});
  if (!job.ok()) return nullptr;
  box->job = std::move(*job);
  SandboxSpec spec;
  spec.name = name;
  auto sb = box->job->start(spec);
  if (!sb.ok()) return nullptr;
  box->sandbox = std::move(*sb);
  return box;
}

std::string read_fd(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

class NativeFileOp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!native_available()) return;
    io_ = new boost::asio::io_context;
    NativeOptions options;
    options.file_op_timeout = Millis{200};  // a copy of 100 GiB below must not finish in it
    executor_ = make_native_executor(*io_, options).release();
    a_ = make_box(*executor_, "files-a").release();
    b_ = make_box(*executor_, "files-b").release();
    // The host's canary, at a path every attack below aims at.
    canary_ = new testing::ScratchDir("boxcar-canary");
    canary_file_ = canary_->dir / "canary";
    std::ofstream(canary_file_) << "HOST SECRET";
  }
  static void TearDownTestSuite() {
    delete a_;
    delete b_;
    delete executor_;
    delete io_;
    delete canary_;
  }
  void SetUp() override {
    if (!a_ || !b_) GTEST_SKIP() << "native sandboxes are not available here";
  }

  static Result<FileReply> op(Sandbox& sandbox, FileRequest request) {
    std::optional<Result<FileReply>> got;
    bool done = false;
    sandbox.file_op(std::move(request), [&](Result<FileReply> r) {
      got.emplace(std::move(r));
      done = true;
    });
    testing::run_until(*io_, done);
    return std::move(*got);
  }
  static FileRequest req(FileOp op, std::string path, std::string to = {}) {
    FileRequest r;
    r.op = op;
    r.path = std::move(path);
    r.to = std::move(to);
    return r;
  }
  // Writes `data` to `path` as the API does: open_write, the bytes, commit_write.
  static Result<FileReply> write(Sandbox& sandbox, const std::string& path, const std::string& data,
                                 bool parents = false) {
    auto r = req(FileOp::open_write, path);
    r.parents = parents;
    auto opened = op(sandbox, r);
    if (!opened || opened->err) return opened;
    EXPECT_EQ(::write(opened->fd.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
    opened->fd.reset();
    return op(sandbox, req(FileOp::commit_write, path, opened->entry.name));
  }
  static std::string read(Sandbox& sandbox, const std::string& path) {
    auto r = op(sandbox, req(FileOp::open_read, path));
    if (!r) return "error: " + r.error().message;
    if (r->err) return "errno " + std::to_string(r->err);
    return read_fd(r->fd.get());
  }
  static testing::Ran sh(Sandbox& sandbox, const std::string& script) {
    return testing::run_in(*io_, sandbox, ExecRequest{{"sh", "-c", script}, {kPath}});
  }
  static std::string host_canary() {
    std::ifstream in(canary_file_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  static inline boost::asio::io_context* io_ = nullptr;
  static inline Executor* executor_ = nullptr;
  static inline Box* a_ = nullptr;
  static inline Box* b_ = nullptr;
  static inline testing::ScratchDir* canary_ = nullptr;
  static inline fs::path canary_file_;
};

TEST_F(NativeFileOp, WriteThenReadBackOwnedByTheSandboxRoot) {
  Sandbox& s = *a_->sandbox;
  for (std::string path : {"/workspace/hello.txt", "/tmp/hello.txt"}) {
    auto first = write(s, path, "hello\n");
    ASSERT_TRUE(first.ok()) << first.error().message;
    ASSERT_EQ(first->err, 0) << first->message;
    EXPECT_TRUE(first->created);
    EXPECT_EQ(first->entry.size, 6u);
    auto again = write(s, path, "replaced\n");
    ASSERT_TRUE(again.ok() && again->err == 0);
    EXPECT_FALSE(again->created);
    EXPECT_EQ(read(s, path), "replaced\n");
    auto owner = sh(s, "stat -c '%u:%g %a' " + path);
    EXPECT_EQ(owner.out, "0:0 644\n") << path;
  }
  // Appending writes in place.
  auto r = req(FileOp::open_write, "/workspace/hello.txt");
  r.append = true;
  auto opened = op(s, r);
  ASSERT_TRUE(opened.ok() && opened->err == 0);
  ASSERT_EQ(::write(opened->fd.get(), "more\n", 5), 5);
  opened->fd.reset();
  EXPECT_EQ(read(s, "/workspace/hello.txt"), "replaced\nmore\n");
  // The sandbox's own workspace directory holds what was written.
  EXPECT_TRUE(fs::exists(a_->workspace.dir / "hello.txt"));
}

TEST_F(NativeFileOp, MkdirListStatCopyMoveRemove) {
  Sandbox& s = *a_->sandbox;
  auto mk = req(FileOp::mkdir, "/workspace/tree/sub");
  mk.parents = true;
  mk.mode = 0755;
  ASSERT_EQ(op(s, mk)->err, 0);
  ASSERT_EQ(op(s, mk)->err, 0) << "parents: an existing directory is fine";
  mk.parents = false;
  EXPECT_EQ(op(s, mk)->err, EEXIST);
  ASSERT_EQ(write(s, "/workspace/tree/a.txt", "a")->err, 0);
  ASSERT_EQ(write(s, "/workspace/tree/sub/b.txt", "bb")->err, 0);
  ASSERT_EQ(write(s, "/workspace/tree/.hidden", "")->err, 0);
  ASSERT_EQ(sh(s, "ln -sfn sub/b.txt /workspace/tree/link").outcome.ok(), true);

  auto list = req(FileOp::list, "/workspace/tree");
  list.recursive = true;
  auto listed = op(s, list);
  ASSERT_TRUE(listed.ok() && listed->err == 0) << (listed ? listed->message : listed.error().message);
  std::vector<std::string> paths;
  for (const auto& e : listed->entries) paths.push_back(e.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"/workspace/tree/.hidden", "/workspace/tree/a.txt", "/workspace/tree/link",
                                             "/workspace/tree/sub", "/workspace/tree/sub/b.txt"}));
  EXPECT_EQ(listed->entries[2].type, FileEntry::Type::symlink);
  EXPECT_EQ(listed->entries[2].target, "sub/b.txt");
  EXPECT_FALSE(listed->truncated);
  list.hidden = false;
  list.recursive = false;
  EXPECT_EQ(op(s, list)->entries.size(), 3u);

  auto st = op(s, req(FileOp::stat, "/workspace/tree/sub/b.txt"));
  EXPECT_EQ(st->entry.type, FileEntry::Type::file);
  EXPECT_EQ(st->entry.size, 2u);
  EXPECT_EQ(op(s, req(FileOp::stat, "/workspace/nothing"))->err, ENOENT);
  EXPECT_EQ(op(s, req(FileOp::open_read, "/workspace/tree"))->err, EISDIR);

  // copy: a directory only with recursive; not over an existing one without overwrite.
  EXPECT_EQ(op(s, req(FileOp::copy, "/workspace/tree", "/workspace/copy"))->err, EISDIR);
  auto cp = req(FileOp::copy, "/workspace/tree", "/workspace/copy");
  cp.recursive = true;
  ASSERT_EQ(op(s, cp)->err, 0);
  EXPECT_EQ(read(s, "/workspace/copy/sub/b.txt"), "bb");
  EXPECT_EQ(read(s, "/workspace/copy/link"), "bb");
  EXPECT_EQ(op(s, cp)->err, EEXIST);

  // move across file systems (/workspace to the /tmp tmpfs): copied, then removed.
  ASSERT_EQ(op(s, req(FileOp::move, "/workspace/copy", "/tmp/moved"))->err, 0);
  EXPECT_EQ(read(s, "/tmp/moved/a.txt"), "a");
  EXPECT_EQ(op(s, req(FileOp::stat, "/workspace/copy"))->err, ENOENT);
  // and within one: rename; not over an existing file without overwrite.
  ASSERT_EQ(write(s, "/tmp/other", "o")->err, 0);
  EXPECT_EQ(op(s, req(FileOp::move, "/tmp/moved/a.txt", "/tmp/other"))->err, EEXIST);
  auto mv = req(FileOp::move, "/tmp/moved/a.txt", "/tmp/other");
  mv.overwrite = true;
  ASSERT_EQ(op(s, mv)->err, 0);
  EXPECT_EQ(read(s, "/tmp/other"), "a");

  // remove: a non-empty directory only with recursive.
  EXPECT_EQ(op(s, req(FileOp::remove, "/tmp/moved"))->err, ENOTEMPTY);
  auto rm = req(FileOp::remove, "/tmp/moved");
  rm.recursive = true;
  ASSERT_EQ(op(s, rm)->err, 0);
  EXPECT_EQ(sh(s, "ls /tmp/moved 2>&1 || echo gone").out.find("gone") != std::string::npos, true);
  EXPECT_EQ(op(s, req(FileOp::remove, "/"))->err, EINVAL);
}

// Every way a path or a planted link could name the host's canary: none reaches it, for
// reading or for writing. The controls show that each probe works on the sandbox's own files.
TEST_F(NativeFileOp, NoPathOrLinkLeadsOutOfTheSandbox) {
  Sandbox& s = *a_->sandbox;
  const std::string canary = canary_file_.string();  // /tmp/boxcar-canary-XXXX/canary on the host
  // The same directory inside (the sandbox's /tmp is its own tmpfs), so a write that is
  // confined still lands somewhere: the controls below find it there.
  // (Its own file for the control through /workspace/to-root: ctest runs each test alone.)
  ASSERT_TRUE(sh(s, "echo replaced > /workspace/hello.txt && mkdir -p " + canary_->dir.string() +
                    " && ln -sfn / /workspace/to-root && ln -sfn " + canary + " /workspace/to-canary && "
                    "ln -sfn ../../../../.. /workspace/up")
                  .outcome.ok());
  const std::vector<std::string> attacks = {
      canary,
      "/../../../.." + canary,
      "/workspace/../../.." + canary,
      "/workspace/to-root" + canary,
      "/workspace/to-canary",
      "/workspace/up" + canary,
      "/proc/1/root" + canary,
      "/proc/self/root" + canary,
      "/proc/1/cwd/../../.." + canary,
      "/dev/fd/../root" + canary,
  };
  for (const auto& path : attacks) {
    EXPECT_EQ(read(s, path).find("HOST SECRET"), std::string::npos) << path;
    (void)write(s, path, "OVERWRITTEN");
    EXPECT_EQ(host_canary(), "HOST SECRET") << path;
  }
  // Magic links are refused outright, not merely resolved inside.
  EXPECT_EQ(op(s, req(FileOp::open_read, "/proc/1/root/etc/hostname"))->err, ELOOP);
  EXPECT_EQ(op(s, req(FileOp::open_read, "/proc/self/root/etc/hostname"))->err, ELOOP);
  // Controls: the same probes reach the sandbox's own files. The writes above through plain
  // paths and links landed inside (the sandbox's /tmp is its own tmpfs).
  EXPECT_EQ(read(s, canary), "OVERWRITTEN");
  EXPECT_EQ(read(s, "/workspace/to-canary"), "OVERWRITTEN");
  EXPECT_EQ(read(s, "/workspace/to-root/workspace/hello.txt").substr(0, 8), "replaced");
  EXPECT_EQ(sh(s, "cat " + canary).out, "OVERWRITTEN");
  EXPECT_EQ(host_canary(), "HOST SECRET");
}

TEST_F(NativeFileOp, TwoSandboxesDoNotSeeEachOthersFiles) {
  ASSERT_EQ(write(*a_->sandbox, "/tmp/only-a", "a")->err, 0);
  ASSERT_EQ(write(*a_->sandbox, "/workspace/only-a", "a")->err, 0);
  EXPECT_EQ(op(*b_->sandbox, req(FileOp::stat, "/tmp/only-a"))->err, ENOENT);
  EXPECT_EQ(op(*b_->sandbox, req(FileOp::stat, "/workspace/only-a"))->err, ENOENT);
  EXPECT_EQ(op(*a_->sandbox, req(FileOp::stat, "/workspace/only-a"))->err, 0);  // control
}

TEST_F(NativeFileOp, AHugeListingIsTruncatedAtTheLimit) {
  Sandbox& s = *b_->sandbox;
  ASSERT_TRUE(sh(s, "mkdir -p /tmp/many && cd /tmp/many && seq 1 3000 | xargs touch").outcome.ok());
  auto list = req(FileOp::list, "/tmp/many");
  list.limit = 1000;
  auto r = op(s, list);
  ASSERT_TRUE(r.ok() && r->err == 0);
  EXPECT_EQ(r->entries.size(), 1000u);
  EXPECT_TRUE(r->truncated);
  list.limit = 5000;
  r = op(s, list);
  EXPECT_EQ(r->entries.size(), 3000u);
  EXPECT_FALSE(r->truncated);
}

TEST_F(NativeFileOp, AHelperThatDoesNotAnswerIsKilled) {
  Sandbox& s = *b_->sandbox;
  // 100 GiB of holes read byte by byte into /dev/null: far longer than the 200 ms allowed.
  ASSERT_TRUE(sh(s, "truncate -s 100G /workspace/sparse").outcome.ok());
  auto cp = req(FileOp::copy, "/workspace/sparse", "/dev/null");
  cp.overwrite = true;
  auto r = op(s, cp);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().err, ETIMEDOUT);
  auto gone = sh(s, "while grep -qx boxcar-files /proc/[0-9]*/comm 2>/dev/null; do sleep 0.01; done; echo gone");
  EXPECT_EQ(gone.out, "gone\n");
  EXPECT_EQ(op(s, req(FileOp::stat, "/workspace/sparse"))->entry.size, 100ull << 30);  // still answering
}

// Replies the sandbox could forge if it ever took the helper over: refused, not trusted.
FileEntry named(std::string name, std::string path) {
  FileEntry e;
  e.name = std::move(name);
  e.path = std::move(path);
  return e;
}

TEST(NativeFileReply, ForgedRepliesAreRefused) {
  FileRequest list;
  list.op = FileOp::list;
  list.path = "/workspace";
  list.limit = 2;
  FileReply ok;
  ok.entries.push_back(named("a", "/workspace/a"));
  EXPECT_TRUE(check_file_reply(list, ok).ok());
  for (auto bad : {named("../x", "/workspace/x"), named("a/b", "/workspace/a/b"), named("", "/w"),
                   named("..", "/workspace"), named(std::string("a\0b", 3), "/workspace/a"),
                   named("a", "relative")}) {
    FileReply r;
    r.entries.push_back(bad);
    EXPECT_FALSE(check_file_reply(list, r).ok()) << bad.name << " " << bad.path;
  }
  FileReply many;
  many.entries.assign(3, named("a", "/workspace/a"));
  EXPECT_FALSE(check_file_reply(list, many).ok()) << "more entries than the limit";
  // A count that claims more entries than the bytes hold is malformed.
  std::string data = native::encode_file_reply(ok, false);
  data.resize(data.size() - 1);
  FileReply decoded;
  bool has_fd;
  EXPECT_FALSE(native::decode_file_reply(data, decoded, has_fd));
  EXPECT_TRUE(native::decode_file_reply(native::encode_file_reply(ok, false), decoded, has_fd));
}

}  // namespace
}  // namespace boxcar::executors
