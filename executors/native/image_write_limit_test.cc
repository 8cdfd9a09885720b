// --max-image-write: an image step's writable layer is a filesystem of its own, of that size;
// each way of writing more than it holds is tried (the layers: image_root_fixture.h).
#include <sys/stat.h>
#include <unistd.h>

#include "executors/native/image_root_fixture.h"
#include "testing/upper_disk_use.h"

namespace boxcar::executors {
namespace {

using namespace image_root_testing;  // NOLINT: the fixture's helpers

class ImageWriteLimitTest : public ImageRootTest {
 protected:
  static constexpr uint64_t kLimit = 32ull << 20;

  NativeOptions options() override {
    char dir[] = "/var/tmp/boxcar-upperlimit-XXXXXX";
    uppers_ = ::mkdtemp(dir);
    NativeOptions o;
    o.uppers_dir = uppers_;
    o.max_image_write = kLimit;
    return o;
  }

  void TearDown() override {
    ImageRootTest::TearDown();
    executor_.reset();
    // Sandboxes still held by the io_context's handlers keep the executor's filesystems.
    std::error_code ec;
    for (const auto& inst : fs::directory_iterator(uppers_, ec)) {
      for (const auto& f : fs::directory_iterator(inst.path(), ec)) ::umount2(f.path().c_str(), MNT_DETACH);
    }
    fs::remove_all(uppers_, ec);
  }

  // Bytes the agent's disk holds for the upper in which the step wrote `marker`.
  uint64_t disk_use(const std::string& marker) {
    auto used = boxcar::testing::loop_upper_disk_use(uppers_, marker);
    EXPECT_TRUE(used) << "no upper holds " << marker;
    return used.value_or(0);
  }

  // Runs `attack` (which must fail) in a fresh image sandbox, then checks the disk.
  void expect_bounded(const std::string& attack) {
    auto sb = start(image_spec());
    ASSERT_TRUE(sb);
    Ran r = run(*sb, "touch /marker; " + attack);
    EXPECT_EQ(r.outcome.kind, Outcome::Kind::failed) << r.out << r.err;
    EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
    EXPECT_NE(r.outcome.message.find("--max-image-write"), std::string::npos) << r.outcome.message;
    EXPECT_LE(disk_use("marker"), kLimit);
    // Control, same executor: a step in a fresh sandbox still writes under the limit.
    auto next = start(image_spec());
    ASSERT_TRUE(next);
    Ran ok = run(*next, "dd if=/dev/zero of=/ok bs=1M count=8 2>/dev/null && echo ok");
    EXPECT_EQ(ok.out, "ok\n") << ok.err;
  }

  fs::path uppers_;
};

TEST_F(ImageWriteLimitTest, WritingPastTheLimitGetsEnospcAndTheDiskHoldsNoMore) {
  auto sb = start(image_spec());
  ASSERT_TRUE(sb);
  // Control: 8 MiB fits, and the measure from the host sees it.
  Ran small = run(*sb, "dd if=/dev/zero of=/small bs=1M count=8 2>/dev/null && echo ok");
  EXPECT_EQ(small.out, "ok\n") << small.err;
  EXPECT_GE(disk_use("small"), 8ull << 20);
  // The attack: as fast as dd writes, no poll to outrun.
  Ran big = run(*sb, "dd if=/dev/zero of=/big bs=1M count=64");
  EXPECT_EQ(big.outcome.kind, Outcome::Kind::failed);
  EXPECT_NE(big.err.find("No space left on device"), std::string::npos) << big.err;
  EXPECT_NE(big.outcome.message.find("filled its image root: it may write 32.0 MiB there (--max-image-write)"),
            std::string::npos)
      << big.outcome.message;
  EXPECT_LE(disk_use("small"), kLimit);
  // Freeing space makes room again, in the same sandbox.
  Ran again = run(*sb, "rm /big && dd if=/dev/zero of=/again bs=1M count=8 2>/dev/null && echo ok");
  EXPECT_EQ(again.out, "ok\n") << again.err;
  EXPECT_TRUE(again.outcome.message.empty()) << again.outcome.message;
}

TEST_F(ImageWriteLimitTest, SparseFilesAreChargedForWhatTheyHold) {
  expect_bounded("truncate -s 100G /sparse && i=0; while [ $i -lt 64 ]; do "
                 "dd if=/dev/zero of=/sparse bs=1M count=1 seek=$((i * 1024)) conv=notrunc 2>/tmp/e || "
                 "{ cat /tmp/e >&2; exit 1; }; "
                 "i=$((i + 1)); done");
}

TEST_F(ImageWriteLimitTest, HardLinksAddNoRoom) {
  expect_bounded("dd if=/dev/zero of=/a bs=1M count=20 2>/dev/null && i=0; "
                 "while [ $i -lt 200 ]; do ln /a /l$i || exit 2; i=$((i + 1)); done; "
                 "dd if=/dev/zero of=/b bs=1M count=20");
}

TEST_F(ImageWriteLimitTest, ManySmallFilesRunOutOfInodes) {
  // Empty files take no block: the fixed inode count is what stops them.
  expect_bounded("i=0; while : > /f$i; do i=$((i + 1)); done; exit 1");
}

TEST_F(ImageWriteLimitTest, ManyDirectoriesRunOut) {
  expect_bounded("cd / && mkdir $(seq -s \" d\" 0 4000 | sed s/^/d/)");
}

TEST_F(ImageWriteLimitTest, RenamingAddsNoRoom) {
  expect_bounded("dd if=/dev/zero of=/a bs=1M count=20 2>/dev/null && mv /a /etc/renamed && mkdir -p /x/y && "
                 "mv /etc/renamed /x/y/z && dd if=/dev/zero of=/b bs=1M count=20");
}

TEST_F(ImageWriteLimitTest, DeletingAndRewritingStaysWithinTheFile) {
  // 5 x 24 MiB written in turn: each fits, and the agent's disk never holds more than the
  // limit (a freed block is reused within the same file); then one write too many.
  expect_bounded("i=0; while [ $i -lt 5 ]; do dd if=/dev/zero of=/x$i bs=1M count=24 2>/dev/null || exit 2; "
                 "rm /x$i; i=$((i + 1)); done; dd if=/dev/zero of=/y bs=1M count=40");
}

TEST_F(ImageWriteLimitTest, XattrBlocksComeOutOfTheSameRoom) {
  // Files holding no data but a block of extended attributes each: no data to measure, but
  // the blocks come from the same filesystem.
  fs::copy_file(XATTR_FILL_PROBE, top_ / "bin/xattr-fill");
  ::lchown((top_ / "bin/xattr-fill").c_str(), kIdBase, kIdBase);
  expect_bounded("mkdir /xattrs && /bin/xattr-fill /xattrs");
}

// Not a check (no timed assertions): the start cost, run by hand with
// --gtest_also_run_disabled_tests. Median of start + `true` + destroy, host vs image with and
// without the limit.
TEST_F(ImageWriteLimitTest, DISABLED_StartCost) {
  auto median_ms = [&](std::unique_ptr<Job>& job, const SandboxSpec& spec) {
    std::vector<double> ms;
    for (int i = 0; i < 30; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      auto sb = job->start(spec);
      if (!sb.ok()) return -1.0;
      run(**sb, "true");
      (*sb)->destroy();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      io_.restart();
      io_.run_for(5ms);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  };
  SandboxSpec host;
  host.name = "host-step";
  double host_ms = median_ms(job_, host), limited_ms = median_ms(job_, image_spec());
  NativeOptions o;
  o.max_image_write = 0;
  auto plain = make_native_executor(io_, o);
  auto plain_job = plain->prepare(JobSpec{"image-test-plain", workspace_});
  ASSERT_TRUE(plain_job.ok());
  double plain_ms = median_ms(*plain_job, image_spec());
  std::printf("start+true+destroy median: host %.2f ms, image without limit %.2f ms, image with limit %.2f ms\n",
              host_ms, plain_ms, limited_ms);
  (*plain_job)->destroy();
}

TEST_F(ImageWriteLimitTest, DeadAgentsMountedUpperIsDetachedAndRemoved) {
  // What a dead agent leaves: an instance directory with a mounted LoopFs, nobody holding its lock.
  auto sb = start(image_spec());  // a live one of ours, the control
  ASSERT_TRUE(sb);
  EXPECT_EQ(run(*sb, "touch /live && echo ok").out, "ok\n");
  fs::path dead = uppers_ / "1-1-deadbeef";
  fs::create_directories(dead / "f1");
  write_file(uppers_ / "1-1-deadbeef.lock", "");
  ASSERT_TRUE(native::make_loop_fs_template(dead / "template.img", 16ull << 20).ok());
  ASSERT_TRUE(native::mount_loop_fs(dead / "template.img", dead / "f1.img", dead / "f1").ok());
  NativeOptions o;
  o.uppers_dir = uppers_;
  o.max_image_write = kLimit;
  boost::asio::io_context other_io;
  auto next = make_native_executor(other_io, o);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_EQ(run(*sb, "cat /live && echo still").out, "still\n");
}

}  // namespace
}  // namespace boxcar::executors
